from worker.cost import CostModel
from worker.labels import LabelMaker


def maker(make_settings, **env):
    settings = make_settings(**env)
    return LabelMaker(settings.metrics, CostModel(settings.cost))


def test_branches_default_or_other(make_settings):
    labels = maker(make_settings)
    assert labels.branch("main", "main") == "default"
    assert labels.branch("feature/x", "main") == "other"
    assert labels.branch("", "") == "other"


def test_branch_allow_list(make_settings):
    labels = maker(make_settings, GHA_EXPORTER_METRICS__BRANCHES='["main", "release/*"]')
    assert labels.branch("release/1.2", "main") == "release/1.2"
    assert labels.branch("main", "main") == "main"
    assert labels.branch("dependabot/npm/x", "main") == "other"


def test_attempt_label():
    assert LabelMaker.attempt(1) == "first"
    assert LabelMaker.attempt(2) == "rerun"
