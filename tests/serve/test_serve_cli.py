"""``seqkit serve``'s own problems, before it serves: a missing extra, two runs of one name; and the names."""
from __future__ import annotations

from conftest import needs_extra, run_cli, site_without

from seqkit.serve.runs import run_name


def test_without_the_extra_it_is_one_line_with_the_install_command(tmp_path):
    needs_extra("uvicorn", "serve")  # then only starlette is missing
    result = run_cli("serve", tmp_path, site=site_without("starlette", tmp_path / "site"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        'seqkit serve needs starlette, which is not installed: pip install -e ".[serve]" (or pip install '
        '"seqkit[serve]")']


def test_two_runs_of_one_name_are_one_line(tmp_path):
    needs_extra("starlette", "serve")
    needs_extra("uvicorn", "serve")
    for parent in ("a", "b"):
        (tmp_path / parent / "same").mkdir(parents=True)
    result = run_cli("serve", tmp_path / "a" / "same", tmp_path / "b" / "same", "--port", "0")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"seqkit serve: two runs named 'same' ({tmp_path / 'a' / 'same'} and {tmp_path / 'b' / 'same'}); "
        f"each run is served under its folder's name, so give runs of different names"]


def test_a_run_is_named_by_its_folder_and_an_exported_file_by_its_name(tmp_path, monkeypatch):
    (tmp_path / "runs" / "char_lm").mkdir(parents=True)
    (tmp_path / "model.pt").write_bytes(b"")
    assert run_name(tmp_path / "runs" / "char_lm") == "char_lm"
    assert run_name(tmp_path / "model.pt") == "model"
    monkeypatch.chdir(tmp_path / "runs" / "char_lm")
    assert run_name(".") == "char_lm"


def test_connections_are_accepted_without_nagles_delay():
    # asyncio sets TCP_NODELAY only where the listening socket says it is TCP; without it each
    # kept-alive request waited 40 ms for the client's delayed ACK (benchmarks/serve.py: 18 words/s)
    import asyncio
    import socket

    from seqkit.cli.serve import _listen

    async def accepted_nodelay() -> int:
        found = asyncio.get_running_loop().create_future()

        def connected(reader, writer):
            found.set_result(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        listener = _listen("127.0.0.1", 0)
        server = await asyncio.start_server(connected, sock=listener)
        _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
        value = await asyncio.wait_for(found, 60)
        writer.close()
        server.close()
        return value

    assert asyncio.run(accepted_nodelay()) != 0
