"""The plugin as a client repository meets it: a fresh directory with no conftest.py, pytest in a subprocess."""

import subprocess
import sys
import textwrap


def run_pytest(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--lab-lanes", "1", *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def test_client_repo_with_its_own_definitions_file(tmp_path):
    (tmp_path / "clients.toml").write_text(textwrap.dedent('''
        [client.my-agent]
        policy = "pinned-strict"
        url = "https://beam.screenmeet.com/beam/v1/agents/register"
        command = ["curl", "-sS", "--fail", "-X", "POST", "-o", "/dev/null", "--max-time", "10", "--cacert", "{trust}",
                   "--pinnedpubkey", "{pins_curl}", "-H", "Authorization: Bearer {secret}", "{network}", "{url}"]
        proxy = ["--proxy", "{proxy_url}"]
        direct = ["--connect-to", "{host}:{port}:{connect_to}"]
        exit_codes = { 0 = "connected", 90 = "refused", 60 = "tls-error" }

        [client.claims-too-much]   # plain curl that says it pins: the lab must catch it
        policy = "pinned-strict"
        url = "https://beam.screenmeet.com/beam/v1/agents/register"
        command = ["curl", "-sS", "--fail", "-X", "POST", "-o", "/dev/null", "--max-time", "10", "--cacert", "{trust}",
                   "-H", "Authorization: Bearer {secret}", "{network}", "{url}"]
        proxy = ["--proxy", "{proxy_url}"]
        direct = ["--connect-to", "{host}:{port}:{connect_to}"]
        exit_codes = { 0 = "connected", 60 = "tls-error" }
    '''))
    (tmp_path / "test_agent.py").write_text(textwrap.dedent('''
        import pytest
        from harness.plugin import assert_outcome

        @pytest.mark.parametrize("client", ["my-agent", "claims-too-much"])
        @pytest.mark.parametrize("scenario", ["direct", "inspected-continue", "exception-wildcard"])
        def test_agent(run_client, lab_clients, client, scenario):
            assert set(lab_clients) >= {"my-agent", "curl-pinned"}
            assert_outcome(run_client(client, scenario))
    '''))
    proc = run_pytest(tmp_path, "--lab-clients", "clients.toml")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "1 failed, 5 passed" in out
    # The one failure reads as a report: expected vs observed, what the proxy read, the redacted token.
    assert "inspected-continue/claims-too-much: expected refused, observed accepted-inspection (exit 0)" in out
    assert "credentials reached the proxy: authorization" in out
    assert "The proxy decrypted and could read 1 request(s), including credentials (authorization)" in out
    assert "Authorization: Bearer [redacted]" in out and "lab-secret-" not in out
    assert "Traceback" not in out


def test_bad_definitions_file_is_one_sentence(tmp_path):
    (tmp_path / "clients.toml").write_text('[client.x]\npolicy = "pinned"\ncommand = ["x"]\n')
    (tmp_path / "test_x.py").write_text("def test_x(lab_clients):\n    pass\n")
    out = run_pytest(tmp_path, "--lab-clients", "clients.toml")
    assert out.returncode == 1
    assert "clients.toml: client 'x': policy 'pinned' is not one of pinned-strict, pinned-warn, unpinned." in out.stdout


def test_compose_marked_tests_run_only_with_the_compose_lab(tmp_path):
    """A compose test builds images and starts containers: never in a default run, Docker engine or not."""
    (tmp_path / "test_c.py").write_text(textwrap.dedent('''
        import pytest

        @pytest.mark.compose
        def test_needs_compose(lab_backend):
            assert lab_backend == "compose"

        def test_everywhere():
            pass
    '''))
    default = run_pytest(tmp_path)
    assert default.returncode == 0 and "1 passed, 1 deselected" in default.stdout, default.stdout + default.stderr
    # Negative: asked for, the compose test is collected and runs (here it only checks the backend).
    chosen = run_pytest(tmp_path, "--lab=compose", "-k", "needs_compose")
    assert chosen.returncode == 0 and "1 passed, 1 deselected" in chosen.stdout, chosen.stdout + chosen.stderr
