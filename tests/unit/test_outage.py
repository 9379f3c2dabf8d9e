from loguru import logger

from shared.outage import Outage


def test_an_outage_is_two_log_lines_however_many_failures():
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(message.record["message"]), level="INFO")
    now = [0.0]
    outage = Outage(clock=lambda: now[0])
    try:
        outage.answered()  # no outage: nothing said
        for second in range(150):
            now[0] = float(second)
            outage.failed(ConnectionError("refused"), "worker loop" if second % 2 else "sweeper")
        assert outage.ongoing
        now[0] = 152.5
        outage.answered()
        outage.answered()
    finally:
        logger.remove(sink)
    assert len(lines) == 2
    assert lines[0].startswith("Redis unreachable (ConnectionError: refused, sweeper)")
    assert lines[1] == "Redis reachable again after 152.5 s"
    assert not outage.ongoing
