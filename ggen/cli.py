"""The command line: parses arguments, calls the library, maps errors to exit codes.

Exit codes: 0 success; 1 a task failed; 2 bad usage or configuration; 3 internal or
infrastructure error; 130 interrupted.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from ggen import __version__
from ggen.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE, GgenError, UsageError
from ggen.make import MAX_GRACE_S, MAX_JOBS, MAX_TIMEOUT_S, ExecutorKind, Make

app = typer.Typer(
    name="ggen",
    help="Run the lifecycle phases of a monorepo in parallel, skipping unchanged work.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
cache_app = typer.Typer(help="Inspect and maintain the local cache.", no_args_is_help=True)
lifecycle_app = typer.Typer(
    help="The old system's spellings of list, show and run.", no_args_is_help=True
)
app.add_typer(cache_app, name="cache")
app.add_typer(lifecycle_app, name="lifecycle")

WorkspaceOpt = Annotated[
    list[str] | None, typer.Option("--workspace", "-w", help="Only this workspace (repeatable).")
]
FilterOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--filter",
        "-F",
        help="Select workspaces: NAME, @scope/*, NAME..., ...NAME, ./DIR, [REF], !X (repeatable).",
    ),
]
AffectedOpt = Annotated[
    bool,
    typer.Option("--affected", help="Workspaces changed since the base branch, and dependents."),
]
AllOpt = Annotated[
    bool, typer.Option("--all", help="Every workspace, even when started inside one.")
]


def _fail(message: str, code: int) -> NoReturn:
    sys.stderr.write(f"ggen: error: {message}\n")
    raise typer.Exit(code)


def _timeout_seconds(value: float | None) -> float | None:
    """--timeout: a positive number of seconds up to a week (as ``timeout`` in make.toml)."""
    if value is not None and not (math.isfinite(value) and 0 < value <= MAX_TIMEOUT_S):
        raise typer.BadParameter(
            f"must be a positive number of seconds up to {MAX_TIMEOUT_S} (a week), got {value}"
        )
    return value


def _grace_seconds(value: float) -> float:
    """--grace: 0 to an hour."""
    if not (math.isfinite(value) and 0 <= value <= MAX_GRACE_S):
        raise typer.BadParameter(f"must be between 0 and {MAX_GRACE_S} seconds, got {value}")
    return value


def _version(value: bool) -> None:
    if value:
        print(f"ggen {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    directory: Annotated[
        Path | None, typer.Option("--directory", "-C", help="Run as if ggen was started in DIR.")
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    if directory is not None:
        try:
            os.chdir(directory)
        except OSError as exc:
            _fail(f"cannot change to directory {directory}: {exc.strerror}", EXIT_USAGE)


def _load(warn: bool = True) -> Make:
    from ggen.make import load_make

    make = load_make(os.getcwd())
    for warning in make.warnings if warn else ():  # what the files say that ggen ignores
        _warn(str(warning))
    return make


def _select(
    make: Make,
    workspace: list[str] | None,
    filters: list[str] | None,
    affected: bool = False,
    all_: bool = False,
    scope: bool = True,
    phases: list[str] | None = None,
) -> tuple[str, ...] | None:
    """The workspaces the options select (None: every one), saying so on stderr; none when a
    --filter or --affected selection has no task of ``phases``."""
    if all_ and (workspace or filters or affected):
        raise UsageError("--all selects every workspace: drop it or drop -w/--filter/--affected")
    if not (workspace or filters or affected) and (all_ or os.getcwd() == make.root):
        return None  # the common case, without importing the selection rules
    from ggen.runner.select import has_tasks, resolve_selection

    chosen = resolve_selection(
        make,
        os.getcwd(),
        filters=filters or (),
        workspaces=workspace or (),
        affected=affected,
        all_=all_,
        scope=scope,
    )
    if chosen.note:
        sys.stderr.write(f"ggen: {chosen.note}\n")
    names = chosen.workspaces
    if names and phases and (filters or affected) and not has_tasks(make, phases, names):
        sys.stderr.write(f"ggen: nothing to run: no {' or '.join(phases)} task there\n")
        return ()
    return chosen.workspaces


def _console(output: str = "auto") -> Any:
    from ggen.runner.console import Console, OutputMode

    try:
        mode = OutputMode(output)
    except ValueError:
        raise UsageError(
            f'--output: unknown mode "{output}" (auto, stream, grouped, quiet)'
        ) from None
    return Console(os.getcwd(), mode)


def _guard(fn: Any) -> Any:
    """Run a command body, turning ggen's errors into messages and exit codes."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except GgenError as exc:
            _fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            sys.stderr.write("ggen: interrupted\n")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except typer.Exit:
            raise
        except Exception as exc:
            from ggen.settings import resolve_settings

            if resolve_settings(None).debug:
                raise
            if isinstance(exc, OSError) and exc.filename:
                # a file ggen needs (the lock, a directory under .ggen) that it cannot use
                _fail(f"cannot use {exc.filename}: {exc.strerror or exc}", EXIT_INTERNAL)
            _fail(
                f"internal error: {type(exc).__name__}: {exc} (set GGEN_DEBUG=1 for the traceback)",
                EXIT_INTERNAL,
            )

    return wrapper


# run ----------------------------------------------------------------------------------------
@app.command()
@_guard
def run(
    phases: Annotated[list[str], typer.Argument(help="Phases to run, in order.")],
    workspace: WorkspaceOpt = None,
    filter_: FilterOpt = None,
    affected: AffectedOpt = False,
    all_: AllOpt = False,
    parallel: Annotated[
        bool, typer.Option("--parallel", "-p", help="Run tasks in parallel.")
    ] = False,
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", "-j", min=1, max=MAX_JOBS, help="Tasks at once (default: CPUs)."),
    ] = None,
    keep_going: Annotated[
        bool,
        typer.Option(
            "--continue-on-error", "-k", help="Run everything that does not depend on a failure."
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Run every task; refresh the cache.")
    ] = False,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Neither read nor write the cache.")
    ] = False,
    cache_dir: Annotated[
        str | None, typer.Option("--cache-dir", help="The local cache directory.")
    ] = None,
    executor: Annotated[
        str | None, typer.Option("--executor", help="loky (default), inline or dask.")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", help="Dask scheduler address, tcp://HOST:PORT.")
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            callback=_timeout_seconds,
            help="Seconds per task, overriding each phase's.",
        ),
    ] = None,
    grace: Annotated[
        float,
        typer.Option(
            "--grace",
            callback=_grace_seconds,
            help="Seconds between TERM and KILL when stopping a task.",
        ),
    ] = 5.0,
    output: Annotated[
        str, typer.Option("--output", help="auto, stream, grouped or quiet.")
    ] = "auto",
    summary: Annotated[
        str | None, typer.Option("--summary", help="Also write the run summary to FILE.")
    ] = None,
    json_out: Annotated[
        bool,
        typer.Option("--json", help="Print the run summary as JSON instead of the human summary."),
    ] = False,
    trace: Annotated[
        str | None, typer.Option("--trace", help="Write a Chrome trace-event file of the run.")
    ] = None,
    remote_cache: Annotated[
        str | None, typer.Option("--remote-cache", help="HTTP remote cache URL.")
    ] = None,
    remote_read_only: Annotated[
        bool, typer.Option("--remote-read-only", help="Read the remote cache, never write to it.")
    ] = False,
    no_wait: Annotated[
        bool,
        typer.Option(
            "--no-wait", help="Fail instead of waiting when another run holds the project."
        ),
    ] = False,
) -> None:
    """Run PHASES on every workspace (or the selected ones), skipping cached tasks.

    Started inside a workspace's directory, only that workspace is selected (and what it
    depends on runs too) unless --all, -w, --filter or --affected says otherwise.
    """
    from ggen.runner.run import RunOptions
    from ggen.runner.run import run as run_phases

    kind = None
    if executor is not None:
        try:
            kind = ExecutorKind(executor)
        except ValueError:
            raise UsageError(
                f'--executor: unknown executor "{executor}" (loky, inline, dask)'
            ) from None
    from ggen.settings import CommandLine, resolve_settings

    # make.toml's [executor] scheduler comes last, where the Dask executor is made
    scheduler = resolve_settings(None, CommandLine(scheduler=scheduler)).dask_scheduler
    options = RunOptions(
        phases=tuple(phases),
        workspaces=tuple(workspace or ()),
        parallel=parallel,
        jobs=jobs,
        keep_going=keep_going,
        force=force,
        no_cache=no_cache,
        cache_dir=cache_dir,
        executor=kind,
        scheduler=scheduler,
        timeout=timeout,
        grace=grace,
        summary_path=summary,
        remote_cache=remote_cache,
        remote_read_only=remote_read_only,
        no_wait=no_wait,
        output=_console(output).mode,
    )
    make = _load()
    selected = _select(make, workspace, filter_, affected, all_, phases=phases)
    if selected == ():
        raise typer.Exit(0)
    if selected is not None:
        import dataclasses

        options = dataclasses.replace(options, workspaces=selected)
    console = _console("quiet" if json_out else output)
    if json_out:
        console.out = sys.stderr
    outcome = run_phases(make, options, console)
    if trace:
        from ggen.report.trace import write_trace

        write_trace(outcome.summary.to_json(), Path(trace))
    if json_out:
        import orjson

        document = outcome.summary.to_json()
        sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
    else:
        console.summary(outcome.results, outcome.summary.wall_ms / 1000)
    raise typer.Exit(outcome.exit_code)


# looking at the configuration ---------------------------------------------------------------
@app.command("list")
@_guard
def list_(
    json_out: Annotated[bool, typer.Option("--json", help="As JSON.")] = False,
    workspace: WorkspaceOpt = None,
    filter_: FilterOpt = None,
    affected: AffectedOpt = False,
) -> None:
    """List the workspaces (all, or the selected ones) and phases of the project."""
    import dataclasses

    from ggen.runner.views import list_text

    make = _load()
    selected = _select(make, workspace, filter_, affected, scope=False)
    if selected == () and not json_out:
        raise typer.Exit(0)  # the note said so; the listing would show the project root
    if selected is not None:
        make = dataclasses.replace(
            make, workspaces=tuple(w for w in make.workspaces if w.name in selected)
        )
    print(list_text(make, json_out), end="")


@app.command()
@_guard
def show(
    phase: Annotated[str, typer.Argument(help="The phase to show.")], workspace: WorkspaceOpt = None
) -> None:
    """Show a phase: commands, workspaces, dependencies, inputs, outputs, environment."""
    from ggen.runner.views import show_text

    print(show_text(_load(), phase, tuple(workspace or ())), end="")


@app.command()
@_guard
def validate(
    strict: Annotated[
        bool, typer.Option("--strict", help="Make every warning (an ignored key) an error.")
    ] = False,
) -> None:
    """Check make.toml (and every workspace's) and the task graph of every phase."""
    from ggen.runner.views import validate_text

    make = _load(warn=not strict)
    if strict and make.warnings:
        from ggen.make.loader import strict_error

        raise strict_error(make.warnings, "--strict")
    print(validate_text(make), end="")


@app.command()
@_guard
def status(json_out: Annotated[bool, typer.Option("--json", help="As JSON.")] = False) -> None:
    """The last result of each phase per workspace."""
    from ggen.runner.views import status_text

    print(status_text(_load(), json_out), end="")


@app.command()
@_guard
def graph(
    phases: Annotated[list[str], typer.Argument(help="Phases whose task graph to draw.")],
    workspace: WorkspaceOpt = None,
    filter_: FilterOpt = None,
    affected: AffectedOpt = False,
    all_: AllOpt = False,
    fmt: Annotated[str, typer.Option("--format", "-f", help="dot, mermaid, json or html.")] = "dot",
    out: Annotated[
        str | None, typer.Option("--output", "-o", help="Write to FILE instead of stdout.")
    ] = None,
) -> None:
    """Print the task graph of PHASES (on the workspaces `ggen run` would select)."""
    from ggen.runner.graph import GraphFormat, render_graph
    from ggen.runner.plan import build_plan

    try:
        gf = GraphFormat(fmt)
    except ValueError:
        raise UsageError(f'--format: unknown format "{fmt}" (dot, mermaid, json, html)') from None
    make = _load()
    selected = _select(make, workspace, filter_, affected, all_, phases=phases)
    if selected == ():
        raise typer.Exit(0)
    plan = build_plan(make, phases, selected or ())
    if gf is GraphFormat.HTML:
        from ggen.report.graph_html import render_graph as render_html
        from ggen.runner.graph import edges, nodes

        text = render_html(nodes(plan), edges(plan), make.project.name)
    else:
        text = render_graph(plan, gf)
    _emit(text, out)


def _emit(text: str, out: str | None) -> None:
    if out:
        from ggen.atomic import write_text_atomic

        write_text_atomic(Path(out), text)
    else:
        sys.stdout.write(text)


@app.command()
@_guard
def explain(
    phase: Annotated[str, typer.Argument(help="The phase.")],
    workspace: Annotated[
        str | None,
        typer.Option("--workspace", "-w", help="The workspace (default: the one you are in)."),
    ] = None,
    cache_dir: Annotated[str | None, typer.Option("--cache-dir")] = None,
) -> None:
    """Would PHASE run on WORKSPACE, and why: what differs from the last recorded run."""
    from ggen.runner.explain import explain_task, explain_text
    from ggen.runner.run import RunOptions

    make = _load()
    if workspace is None:
        workspace = (_select(make, None, None) or (".",))[0]
    e = explain_task(
        make, phase, workspace, RunOptions(phases=(phase,), cache_dir=cache_dir), _console("quiet")
    )
    print(explain_text(e, Path(make.root)))


@app.command()
@_guard
def audit(
    phases: Annotated[list[str], typer.Argument(help="Phases whose tasks to trace, in order.")],
    workspace: WorkspaceOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="The report as JSON.")] = False,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", min=0.001, help="Seconds per task, overriding each phase's."),
    ] = None,
) -> None:
    """Run PHASES' tasks without the cache under strace; report files they read or write that
    their inputs and outputs do not declare (exit 1 if any)."""
    from ggen.runner.audit import AuditOptions, audit_phases
    from ggen.runner.audit_report import report_json, report_text

    options = AuditOptions(tuple(phases), tuple(workspace or ()), timeout=timeout)
    result = audit_phases(_load(), options, _audit_note)
    if json_out:
        import orjson

        sys.stdout.write(orjson.dumps(report_json(result), option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
    else:
        sys.stdout.write(report_text(result))
    raise typer.Exit(result.exit_code)


def _audit_note(message: str) -> None:
    sys.stderr.write(f"ggen audit: {message}\n")


@app.command()
@_guard
def report(
    run_id: Annotated[str | None, typer.Argument(help="Run id or prefix (default: last).")] = None,
    out: Annotated[str, typer.Option("--output", "-o", help="The HTML file.")] = "report.html",
) -> None:
    """Write a self-contained HTML report of a run."""
    from ggen.report.html import write_report
    from ggen.runner.state import list_summaries, load_summary, read_json

    make = _load()
    summary = load_summary(make, run_id)
    if summary is None:
        raise UsageError(
            "no run recorded yet (run `ggen run PHASE` first)"
            if not run_id
            else f'no run "{run_id}" under .ggen/runs'
        )
    history = [d for p in list_summaries(make)[-20:] if isinstance(d := read_json(p), dict)]
    write_report(summary, Path(out), history)
    print(f"report written to {out}")


@app.command()
@_guard
def init(
    force: Annotated[bool, typer.Option("--force", help="Replace an existing make.toml.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the make.toml instead of writing it.")
    ] = False,
) -> None:
    """Write a make.toml for this repository: its workspaces from the package manager's
    manifests, its phases from turbo.json, else from the package scripts most workspaces share."""
    from ggen.atomic import write_text_atomic
    from ggen.init import gather, make_plan, render_files, report
    from ggen.make import MAKE_FILE
    from ggen.make.loader import load_make_text

    if Path(MAKE_FILE).exists() and not (force or dry_run):
        raise UsageError(f"{MAKE_FILE} already exists here: use --force to replace it")
    facts = gather(".")
    plan = make_plan(facts)
    files = render_files(plan)
    existing = [f for f in files if Path(f).exists()]
    if existing and not (force or dry_run):
        raise UsageError(f"{', '.join(existing)} already exist: use --force to replace them")
    own = {f.removesuffix(f"/{MAKE_FILE}"): t for f, t in files.items() if f != MAKE_FILE}
    load_make_text(".", files[MAKE_FILE], own)  # never write what ggen itself would refuse
    if dry_run:
        for file, text in files.items():
            sys.stdout.write(f"# --- {file}\n{text}" if len(files) > 1 else text)
    else:
        for file, text in reversed(files.items()):  # the root's last: it makes the project
            write_text_atomic(Path(file), text)
    written = "(dry run: nothing written)" if dry_run else f"wrote {', '.join(files)}"
    (sys.stderr if dry_run else sys.stdout).write(report(plan, len(facts.workspaces), written))


# cache --------------------------------------------------------------------------------------
CacheDirOpt = Annotated[str | None, typer.Option("--cache-dir", help="The cache directory.")]


def _store(cache_dir: str | None) -> Any:
    from ggen.cache.store import Store
    from ggen.settings import CommandLine, resolve_settings

    try:
        make: Make | None = _load()
    except GgenError:
        make = None
    settings = resolve_settings(make, CommandLine(cache_dir=cache_dir))
    max_size = make.cache.max_size if make is not None else None
    return Store(settings.cache_dir, max_size=max_size, warn=_warn)


def _warn(message: str) -> None:
    sys.stderr.write(f"ggen: warning: {message}\n")


@cache_app.command("stats")
@_guard
def cache_stats(cache_dir: CacheDirOpt = None) -> None:
    """Entries, blobs and size of the local cache."""
    store = _store(cache_dir)
    s = store.stats()
    print(
        f"cache: {store.root}\nentries: {s.entries}\nblobs: {s.blobs}\nsize: {s.total_bytes} bytes"
    )


@cache_app.command("verify")
@_guard
def cache_verify(
    cache_dir: CacheDirOpt = None,
    repair: Annotated[bool, typer.Option("--repair", help="Remove damaged entries.")] = False,
) -> None:
    """Re-hash every blob and check every entry; exit 1 if anything is damaged."""
    store = _store(cache_dir)
    report_ = store.verify(repair=repair)
    for problem in report_.problems:
        print(f"damaged: {problem}")
    print(
        f"verified {report_.entries} entries and {report_.blobs} blobs: "
        f"{len(report_.problems)} problems"
    )
    raise typer.Exit(1 if report_.problems else 0)


@cache_app.command("prune")
@_guard
def cache_prune(
    cache_dir: CacheDirOpt = None,
    max_size: Annotated[
        str | None,
        typer.Option(
            "--max-size", help="Evict least recently used entries down to SIZE (e.g. 2GB)."
        ),
    ] = None,
) -> None:
    """Evict least recently used entries beyond the size bound; drop unreferenced blobs."""
    from ggen.make import parse_size

    store = _store(cache_dir)
    freed = store.prune(parse_size(max_size, "--max-size") if max_size else None)
    print(f"freed {freed} bytes")


@cache_app.command("clear")
@_guard
def cache_clear(cache_dir: CacheDirOpt = None) -> None:
    """Remove every entry of the local cache."""
    store = _store(cache_dir)
    store.clear()
    print(f"cleared {store.root}")


# the old spellings --------------------------------------------------------------------------
@lifecycle_app.command("list")
@_guard
def lifecycle_list() -> None:
    """Same as `ggen list`."""
    from ggen.runner.views import list_text

    print(list_text(_load(), False), end="")


@lifecycle_app.command("show")
@_guard
def lifecycle_show(phase: str, workspace: WorkspaceOpt = None) -> None:
    """Same as `ggen show PHASE`."""
    from ggen.runner.views import show_text

    print(show_text(_load(), phase, tuple(workspace or ())), end="")


@lifecycle_app.command(
    "run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def lifecycle_run(ctx: typer.Context) -> None:
    """Same as `ggen run` (every option of it applies)."""
    _reinvoke(["run", *ctx.args])


@lifecycle_app.command(
    "pipeline", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def lifecycle_pipeline(ctx: typer.Context) -> None:
    """Run several phases in order, as one run: same as `ggen run P1 P2 ...`."""
    _reinvoke(["run", *ctx.args])


def _reinvoke(args: list[str]) -> NoReturn:
    """Run ``ggen ARGS`` in this process: usage errors are printed and exit 2, as at the top."""
    try:
        app(args, prog_name="ggen")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        raise typer.Exit(code) from None
    raise typer.Exit(0)


def main() -> None:
    """Console-script entry point."""
    app()
