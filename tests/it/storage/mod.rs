//! The storage conformance suite: every `Storage` and `WriteTx` operation
//! and the concurrency contract written on the trait, one scenario list run
//! once per backend (`storage::sqlite::*`, `storage::postgres::*`), below
//! the domain, so a backend that drifts from the other fails here first.

mod cases;
mod fixture;

/// Instantiates the scenarios of [`cases`] for one backend: `$open` makes
/// a fresh, empty [`fixture::Backend`].
macro_rules! per_backend {
    ($backend:ident, $open:path, $($case:ident),*) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::cases::$case($open).await;
                }
            )*
        }
    };
}

/// Every scenario, on every backend.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        per_backend!(sqlite, super::fixture::Backend::sqlite, $($case),*);
        per_backend!(postgres, super::fixture::Backend::postgres, $($case),*);
    };
}

conformance!(
    streams_are_created_counted_described_and_listed,
    appends_read_back_by_stream_and_across_the_log,
    dedup_lookup_finds_ids_per_stream_and_a_duplicate_fails_whole,
    the_log_head_and_recorded_floor_never_go_back,
    trim_removes_by_count_sequence_and_time,
    take_removes_from_either_end_within_a_byte_budget,
    removed_ids_are_remembered_until_forgotten,
    events_are_found_by_sequence_and_after_a_sequence,
    delete_stream_removes_its_events_groups_and_checkpoints,
    groups_keep_cursor_consumers_and_pending_entries,
    pending_entries_are_settled_deferred_and_released,
    checkpoints_belong_to_owners_and_list_by_literal_prefix,
    the_write_probe_changes_nothing_else,
    a_rolled_back_or_dropped_transaction_leaves_no_trace,
    reads_see_only_committed_data,
    writers_take_turns_so_positions_follow_commit_order,
    commits_that_append_wake_the_commit_feed,
    stream_patterns_match_as_riverlog_defines_them,
    filter_patterns_match_as_riverlog_defines_them,
    batches_larger_than_one_statement_are_written_and_found_whole,
    stream_heads_are_read_and_saved_many_at_a_time,
);
