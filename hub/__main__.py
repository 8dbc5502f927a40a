"""python -m hub [serve options] | list | export SLUG DIR

    python -m hub [--host 127.0.0.1] [--port 7860] [--only slug,slug]   serve the hub
    python -m hub list                                                 one line per space: <slug>\\t<title>
    python -m hub export <slug> <dir>                                  write a standalone Space
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def _serve(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m hub", description="Serve the Vision Transformer Lab hub.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--only", default=None, help="comma-separated slugs to serve (default: all)")
    args = parser.parse_args(argv)

    import uvicorn

    from hub.app import create_app

    only = args.only.split(",") if args.only else None
    app = create_app(only)
    print(f"Vision Transformer Lab on http://{args.host}:{args.port}/ (each space also at /<slug>/)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "list":
        from hub.registry import SPACES

        for t in SPACES:
            print(f"{t.slug}\t{t.title}")
    elif argv and argv[0] == "export":
        if len(argv) != 3:
            sys.exit("usage: python -m hub export <slug> <dir>")
        from hub.export import export

        try:
            out = export(argv[1], argv[2])
        except ValueError as err:
            sys.exit(f"error: {err}")
        print(f"wrote {out}; run it with: cd {out} && pip install -r requirements.txt && python app.py")
    else:
        _serve(argv)


if __name__ == "__main__":
    main()
