import pytest

from worker.cost import NO_RUNNER, SELF_HOSTED, UNKNOWN, CostModel


@pytest.fixture(name="model")
def _model(make_settings):
    settings = make_settings(
        GHA_EXPORTER_COST__LABEL_SKUS=(
            '{"ubuntu-22.04-16core" = "linux_16_core", "gpu-box" = "linux_4_core_gpu"}'
        ),
        GHA_EXPORTER_COST__SELF_HOSTED_GROUPS='["on-prem"]',
        GHA_EXPORTER_COST__SELF_HOSTED_RATE="0.002",
    )
    return CostModel(settings.cost)


@pytest.mark.parametrize(
    ("labels", "group", "expected"),
    [
        (("ubuntu-latest",), "GitHub Actions", "linux"),
        (("ubuntu-24.04",), "", "linux"),
        (("ubuntu-slim",), "", "linux_slim"),
        (("ubuntu-24.04-arm",), "", "linux_2_core_arm"),
        (("windows-latest",), "", "windows"),
        (("windows-11-arm",), "", "windows_2_core_arm"),
        (("macos-15",), "", "macos"),
        (("macos-15-large",), "", "macos_l"),
        (("macos-14-xlarge",), "", "macos_xl"),
        (("ubuntu-22.04-16core",), "", "linux_16_core"),  # a larger runner's admin-chosen label
        (("self-hosted", "linux", "x64"), "", SELF_HOSTED),
        (("Self-Hosted", "ubuntu-latest"), "", SELF_HOSTED),
        (("k8s",), "on-prem", SELF_HOSTED),  # a configured self-hosted group, no default labels
        (("gpu", "db-app"), "my runner group", UNKNOWN),
        ((), "", NO_RUNNER),
    ],
)
def test_runner_class(model, labels, group, expected):
    assert model.runner_class(labels, group) == expected


@pytest.mark.parametrize(
    ("seconds", "minutes"), [(0, 0), (1, 1), (59, 1), (60, 1), (61, 2), (3599, 60), (3601, 61)]
)
def test_each_job_is_rounded_up_to_the_whole_minute(model, seconds, minutes):
    cost = model.job_cost("linux", seconds, public=False)
    assert cost.minutes == minutes
    assert cost.usd == pytest.approx(minutes * 0.006)


def test_list_prices_of_2026(model):
    assert model.job_cost("windows", 60, public=False).usd == pytest.approx(0.010)
    assert model.job_cost("macos", 60, public=False).usd == pytest.approx(0.062)
    assert model.job_cost("linux_slim", 60, public=False).usd == pytest.approx(0.002)
    assert model.job_cost("linux_16_core", 600, public=False).usd == pytest.approx(0.42)


def test_standard_runners_are_free_on_public_repositories_larger_runners_never(model):
    assert model.job_cost("linux", 600, public=True).usd == 0
    assert model.job_cost("linux", 600, public=True).minutes == 0
    assert model.job_cost("macos", 600, public=True).usd == 0
    assert model.job_cost("linux_16_core", 600, public=True).usd == pytest.approx(0.42)
    assert model.job_cost("macos_xl", 60, public=True).usd == pytest.approx(0.102)
    assert model.job_cost("linux", 600, public=None).usd == pytest.approx(0.06)  # unknown: not free


def test_self_hosted_and_unknown_rates(model):
    assert model.job_cost(SELF_HOSTED, 120, public=False).usd == pytest.approx(0.004)
    assert model.job_cost(UNKNOWN, 120, public=False).usd == 0


def test_configured_rates_replace_list_prices_one_by_one(make_settings):
    model = CostModel(make_settings(GHA_EXPORTER_COST__RATES="{linux = 0.004}").cost)
    assert model.job_cost("linux", 60, public=False).usd == pytest.approx(0.004)
    assert model.job_cost("windows", 60, public=False).usd == pytest.approx(0.010)
