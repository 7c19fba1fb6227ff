"""`farmlink contracts`: the public event contracts, written out as JSON Schema and AsyncAPI."""

from pathlib import Path

import typer

from farmlink.cli.common import console

contracts_app = typer.Typer(help="The public event contracts.", no_args_is_help=True)


@contracts_app.command("export")
def contracts_export() -> None:
    """Write the JSON Schema of every event type and version under contracts/schemas/, and of the input
    messages, each input payload and the receipt under contracts/schemas/inputs/."""
    from contracts.schemas import BreakingSchemaChange, export

    try:
        written = export()
    except BreakingSchemaChange as refused:  # a published schema would break its readers: say why, write nothing
        console.print(str(refused), style="red", highlight=False, markup=False)
        raise typer.Exit(1) from None
    for path in written:
        console.print(f"wrote {path}")


@contracts_app.command("asyncapi")
def contracts_asyncapi(
    output: Path = typer.Option(
        Path(__file__).parents[2] / "contracts" / "asyncapi.yaml",
        "--output",
        "-o",
        help="where to write the document ('-' for standard output)",
    ),
) -> None:
    """Write the AsyncAPI 3.0 document of every topic, message and principal, generated from the code."""
    from farmlink.asyncapi import render

    text = render()
    if str(output) == "-":
        typer.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    console.print(f"wrote {output}")
