from scalelab.run.accounting import (
    account,
    message_id,
    of_run,
    produced_since,
    unprocessed_in_tail,
)


def ids(*seqs: int, run: str = "r1") -> list[str]:
    return [message_id(run, s) for s in seqs]


def test_everything_processed_is_ok() -> None:
    result = account(3, ids(0, 1, 2), [], [])
    assert result.ok and result.lost == 0 and result.duplicates == 0


def test_duplicates_are_counted_not_hidden() -> None:
    result = account(3, ids(0, 1, 1, 2), [], [])
    assert result.ok
    assert (result.processed, result.processed_records, result.duplicates) == (3, 4, 1)


def test_duplicates_do_not_hide_a_lost_message() -> None:
    result = account(3, ids(0, 1, 1), [], [])
    assert not result.ok and result.lost == 1


def test_dead_letters_and_queue_complete_the_count() -> None:
    result = account(5, ids(0, 1), ids(2), ids(3, 4))
    assert result.ok
    assert result.to_dict()["dead_lettered"] == 1
    assert result.still_queued == 2


def test_a_dead_letter_later_processed_is_not_counted_twice() -> None:
    result = account(2, ids(0, 1), ids(1), [])
    assert result.ok and result.dead_lettered == 0


def test_processed_but_uncommitted_is_not_also_queued() -> None:
    """Message 1 was processed but its offset not committed (it sits in the uncommitted tail
    next to message 3, still waiting); message 2 is lost. Counting the tail as queued (the
    group lag, 2) would make 4 = 2 + 2 and hide the loss."""
    result = account(4, ids(0, 1), [], ids(1, 3))
    assert result.still_queued == 1
    assert not result.ok and result.lost == 1


def test_ids_of_another_run_are_left_out() -> None:
    mixed = ids(0, 1) + ids(0, 1, 2, run="r0") + ["7", "r1x:3"]
    assert of_run(mixed, "r1") == ["r1:0", "r1:1"]


def test_produced_counts_growth_since_the_start_offsets() -> None:
    assert produced_since({0: 100, 1: 40}, {0: 130, 1: 40, 2: 5}) == 35


def test_a_tail_too_large_to_read_is_placed_by_offset() -> None:
    """Partition 0's tail is offsets 10..13, of which 10 and 12 were processed (uncommitted);
    partition 1's tail is empty. A processed record outside the tail changes nothing."""
    tail = {0: (10, 14), 1: (5, 5)}
    assert unprocessed_in_tail(tail, [(0, 10), (0, 12), (0, 12), (0, 3), (1, 4)]) == 2
    result = account(6, ids(0, 1, 2), [], [], queued_unread=2)
    assert result.still_queued == 2 and result.lost == 1
