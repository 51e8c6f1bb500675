//! Behaviour only PostgreSQL has: several replicas on one database, and a
//! database that goes away and comes back; and the test schemas' own
//! clean-up. Run by the PostgreSQL pass of the test command; the SQLite
//! pass skips this module.

mod outages;
mod replicas;
mod schemas;
