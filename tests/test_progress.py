from napari_sam.progress import ProgressClock, format_duration


def test_durations_read_naturally():
    assert format_duration(4.2) == "4 s"
    assert format_duration(125) == "2 min 05 s"
    assert format_duration(3720) == "1 h 02 min"


def test_progress_line_has_percentage_count_and_time_left():
    now = [0.0]
    clock = ProgressClock("tiles", clock=lambda: now[0])
    assert clock.text(0, 0) == ""
    assert clock.text(0, 100) == "0 % · 0/100 tiles"  # no estimate before a step finished
    now[0] = 10.0
    # 10 tiles in 10 s: 90 left at 1 s each
    assert clock.text(10, 100) == "10 % · 10/100 tiles · about 1 min 30 s left"
    now[0] = 100.0
    assert clock.text(100, 100) == "100 % · 100/100 tiles"


def test_restart_forgets_steps_from_a_cache():
    now = [0.0]
    clock = ProgressClock("tiles", clock=lambda: now[0])
    clock.text(50, 100)  # resumed: 50 came from the cache, instantly
    now[0] = 5.0
    assert clock.text(55, 100).endswith("about 45 s left")
    clock.restart()
    clock.text(0, 10)
    now[0] = 6.0
    assert clock.text(1, 10).endswith("about 9 s left")


def test_waiting_before_the_first_step_does_not_stretch_the_estimate():
    from napari_sam.progress import ProgressClock

    now = [0.0]
    clock = ProgressClock("tiles", clock=lambda: now[0])
    for t in (0.0, 5.0, 10.0):  # a background job waiting for a quiet moment, reporting (0, 10)
        now[0] = t
        assert clock.eta(0, 10) is None
    now[0] = 12.0  # its first tile took 2 s
    assert clock.eta(1, 10) == 18.0
