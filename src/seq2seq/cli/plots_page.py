"""Rewrite the page `dvc plots show` writes, with Vega inlined, so that the curves show offline.

    seq2seq plots-page          # rewrites .dvc/plots_template.html

DVC's own page loads Vega from a CDN. `.dvc/config` names the page (`plots.html_template`). It is
generated from vl-convert-python's JavaScript bundle of Vega, Vega-Lite and Vega-Embed (a dev extra:
`pip install -e ".[dev]"`), and committed, so that a clone needs nothing to render its plots; a test
checks it is up to date.
"""

from __future__ import annotations

from pathlib import Path

from seq2seq.cli import parser_for

PAGE = Path(__file__).resolve().parents[3] / ".dvc" / "plots_template.html"
VEGA_LITE = "v5.21"  # the Vega-Lite major version of DVC's plot templates


def page() -> str:
    import vl_convert

    bundle = vl_convert.javascript_bundle(vl_version=VEGA_LITE)
    assert "{plot_divs}" not in bundle and "</script" not in bundle.lower()
    return f"""<!DOCTYPE html>
<html>
<head>
    {{refresh_tag}}
    <meta charset="utf-8">
    <title>DVC Plot</title>
    <!-- Vega, Vega-Lite and Vega-Embed from vl-convert-python {vl_convert.__version__} (Vega-Lite {VEGA_LITE}), inlined: no CDN -->
    <script type="text/javascript">
{bundle}
    </script>
    <style>
        table {{
            border-spacing: 15px;
        }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def main(argv: list[str] | None = None) -> None:
    parser = parser_for("plots-page", __doc__)
    parser.add_argument("--out", type=Path, default=PAGE, help="the page to write")
    args = parser.parse_args(argv)
    args.out.write_text(page(), encoding="utf-8")
    print(f"{args.out}: {args.out.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
