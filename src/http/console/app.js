// riverlog console
