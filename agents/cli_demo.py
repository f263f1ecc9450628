"""`agents demo` (the scripted scenario) and `agents faults` (slow down or break a tunable engine)."""

from __future__ import annotations

import sys

import click
from rich.console import Console

console = Console(width=None if sys.stdout.isatty() else 200)


@click.command()
@click.option("--rate", default=80.0, show_default=True, help="Routed requests per second.")
@click.option("--steady", default=20.0, show_default=True, help="Seconds of steady load.")
@click.option("--degrade", default=45.0, show_default=True, help="Seconds with demo_green degraded.")
@click.option("--recover", default=40.0, show_default=True, help="Seconds after it recovers.")
@click.option("--no-workers", is_flag=True, help="The demo engines' workers run already; do not start them.")
def demo(rate: float, steady: float, degrade: float, recover: float, no_workers: bool) -> None:
    """Steady load, then an engine slows down and fails, then recovers: watch the platform notice,
    alert, act, measure and explain (against `make run`). Exits 1 if it did not."""
    from agents.demo.run import run_demo
    from agents.demo.script import phases

    script = phases(steady, degrade, recover)
    outcome, results = run_demo(script, rate, not no_workers, lambda line: console.print(line, markup=False))
    console.print("\nwhat the platform did (also in `agents alerts`, `agents actions`, `agents insights`):")
    for alert in outcome.alerts:
        state = "resolved" if alert.get("resolved_at") else "open"
        console.print(
            f"  alert   {alert['name']} on {alert['engine']} ({state}): {alert['message']}", markup=False
        )
    for action in outcome.actions:
        console.print(
            f"  action  {action['action']} on {action['engine']} by {action['rule']}: "
            f"verdict {action.get('verdict') or 'pending'}",
            markup=False,
        )
    for insight in outcome.insights:
        console.print(f"  insight {insight['kind']}: {insight['summary']}", markup=False)
    console.print("")
    for description, ok in results:
        console.print(f"{'[green]ok[/green]  ' if ok else '[red]MISS[/red]'} {description}")
    if not all(ok for _, ok in results):
        sys.exit(1)


@click.command()
@click.argument("engine", required=False)
@click.option("--delay-ms", type=float, help="Each request takes this long.")
@click.option("--fail-ratio", type=float, help="This share of requests fails (0..1).")
@click.option("--clear", is_flag=True, help="Remove the engine's faults.")
def faults(engine: str | None, delay_ms: float | None, fail_ratio: float | None, clear: bool) -> None:
    """Inject faults into a tunable engine (demo_blue, demo_green), or list the injected ones."""
    from agents.connections import redis_client
    from agents.faults import all_faults, clear_faults, set_faults

    if engine and clear:
        clear_faults(redis_client(), engine)
    elif engine:
        try:
            set_faults(redis_client(), engine, delay_ms, fail_ratio)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    for name, values in sorted(all_faults(redis_client()).items()):
        console.print(f"{name}: " + ", ".join(f"{k} {v:g}" for k, v in sorted(values.items())), markup=False)
