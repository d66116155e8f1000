from scalelab.run.accounting import account


def test_everything_processed_is_ok() -> None:
    result = account(3, ["0", "1", "2"], [], 0)
    assert result.ok and result.lost == 0 and result.duplicates == 0


def test_duplicates_are_counted_not_hidden() -> None:
    result = account(3, ["0", "1", "1", "2"], [], 0)
    assert result.ok
    assert (result.processed, result.processed_records, result.duplicates) == (3, 4, 1)


def test_duplicates_do_not_hide_a_lost_message() -> None:
    result = account(3, ["0", "1", "1"], [], 0)
    assert not result.ok and result.lost == 1


def test_dead_letters_and_queue_complete_the_count() -> None:
    result = account(5, ["0", "1"], ["2"], 2)
    assert result.ok
    assert result.to_dict()["dead_lettered"] == 1


def test_a_dead_letter_later_processed_is_not_counted_twice() -> None:
    result = account(2, ["0", "1"], ["1"], 0)
    assert result.ok and result.dead_lettered == 0
