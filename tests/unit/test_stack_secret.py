"""``python3 dev.py up`` prints the webhook secret only when it generated it."""

from __future__ import annotations

import hashlib
import stat

from stack.__main__ import SECRETS, SECRETS_FILE, webhook_secret


def test_a_generated_secret_is_kept_private_and_printed(tmp_path):
    env, shown = webhook_secret(tmp_path, {})
    path = tmp_path / "webhook-secret"
    secret = path.read_text().strip()
    assert len(secret) == 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert env == {SECRETS_FILE: str(path.resolve())}
    assert shown.startswith(secret)
    assert webhook_secret(tmp_path, {}) == (env, shown)  # generated once, then kept


def test_a_secret_the_user_set_is_passed_on_and_shown_only_by_its_fingerprint(tmp_path):
    secret = "production-secret-0123456789"
    env, shown = webhook_secret(tmp_path, {SECRETS: secret})
    assert env == {}  # the processes inherit the user's variable as it is
    assert secret not in shown
    assert hashlib.sha256(secret.encode()).hexdigest()[:12] in shown
    assert not (tmp_path / "webhook-secret").exists()  # never written where a later run would print it
    env, shown = webhook_secret(tmp_path, {SECRETS_FILE: "/run/secrets/hook"})
    assert env == {}
    assert shown == "yours, read from /run/secrets/hook"
