"""GitHub's matching of a job's ``runs-on`` labels to runners (worker/runner_match.py), as GitHub
documents it ("Using self-hosted runners in a workflow": "jobs will be queued on runners that have
all the labels that you specify"; terraform-aws-github-runner's table of the same rule): every label
asked for, any case (GitHub Actions injects ``Linux``/``X64`` and jobs ask ``linux``/``x64``; also
found by canonical/github-runner-operators #243); ``self-hosted`` every self-hosted runner's;
GitHub's standard hosted labels not ours to judge; a larger runner asked for by its name."""

import pytest

from worker.github_runners import HOSTED, Runner
from worker.runner_match import Match, Matcher, covers, judged, parts


def self_hosted(name: str, labels: tuple[str, ...], state: str = "idle") -> Runner:
    return Runner(1, name, "linux", state, "Default", labels)


RUNNERS = [
    self_hosted("a", ("self-hosted", "Linux", "X64", "gpu")),
    self_hosted("b", ("self-hosted", "Linux", "X64"), state="busy"),
    self_hosted("c", ("Linux", "gpu")),  # made with --no-default-labels: no self-hosted label
    self_hosted("d", ("self-hosted", "Linux", "arm64"), state="offline"),
    Runner(9, "ubuntu-22.04-16core", "linux", "idle", "Default", ("ubuntu-22.04-16core",), HOSTED),
]


@pytest.fixture(name="matcher")
def _matcher() -> Matcher:
    return Matcher([("orgs/octo-org", RUNNERS)])


@pytest.mark.parametrize(
    ("runs_on", "expected"),
    [
        ("gpu,self-hosted", Match(2, 2)),  # a and c: self-hosted implied for c
        ("GPU,LINUX,self-hosted", Match(2, 2)),  # case does not matter
        ("linux,self-hosted", Match(3, 2)),  # a, b (busy), c; d is offline
        ("linux,self-hosted,x64", Match(2, 1)),
        ("arm64,self-hosted", Match(0, 0)),  # only an offline runner has it
        ("gpu,self-hosted,windows", Match(0, 0)),  # every label, not some
        ("lnux,self-hosted", Match(0, 0)),  # a typo: no runner has it
        ("ubuntu-22.04-16core", Match(1, 1)),  # a larger runner, by its name
        ("self-hosted,ubuntu-22.04-16core", Match(0, 0)),  # not a self-hosted one
    ],
)
def test_online_and_idle_runners_that_could_take_a_job(matcher, runs_on, expected):
    assert matcher.match("octo-org/app", runs_on) == expected


def test_which_jobs_are_judged(matcher):
    assert matcher.judges("octo-org/app", "gpu,self-hosted")
    assert matcher.judges("octo-org/app", "my-custom-label")  # no self-hosted label: still ours
    assert not matcher.judges("octo-org/app", "ubuntu-latest")  # GitHub's standard runners
    assert not matcher.judges("octo-org/app", "macos-14")
    assert not matcher.judges("octo-org/app", "windows-2022")
    assert matcher.judges("octo-org/app", "ubuntu-22.04-16core")  # a polled larger runner's name
    assert not matcher.judges("octo-org/app", "")  # runs-on: {group: ...} alone: no labels
    assert not matcher.judges("other-org/app", "gpu,self-hosted")  # no polled scope reaches it
    assert judged("self-hosted,ubuntu-latest")  # asked of a self-hosted runner


def test_which_runners_a_job_reaches():
    assert covers("orgs/Octo-Org", "octo-org/app")
    assert not covers("orgs/octo-org", "octo-org-two/app")
    assert covers("repos/octo-org/app", "Octo-Org/App")
    assert not covers("repos/octo-org/app", "octo-org/other")
    assert covers("enterprises/acme", "anyone/anything")


def test_a_composite_label_is_compared_part_by_part():
    """RunsOn's single label ``runs-on,env=dev`` travels joined with the others by commas."""
    assert parts(("runs-on,env=dev,runner=arm", "self-hosted")) == frozenset(
        {"runs-on", "env=dev", "runner=arm"}
    )
    matcher = Matcher([("orgs/o", [self_hosted("x", ("runs-on,env=dev,runner=arm",))])])
    assert matcher.match("o/r", "runs-on,env=dev,runner=arm") == Match(1, 1)
