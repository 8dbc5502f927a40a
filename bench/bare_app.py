"""The baseline for start-up and latency: a bare one-tab gradio app with an echo endpoint.

``python -m bench.bare_app --port P`` serves it the same way the hub is served (uvicorn on a
FastAPI app with the Blocks mounted), so start-up ratios compare like with like.
"""

from __future__ import annotations

import argparse

import gradio as gr


def echo(image, image_size, patch_size):
    """Returns its inputs: the cost of a gradio round trip with the patchify payload."""
    return image, {"image_size": image_size, "patch_size": patch_size}


def build() -> gr.Blocks:
    with gr.Blocks() as demo:
        with gr.Tab("Echo"):
            image = gr.Image(type="pil")
            size = gr.Number(224, precision=0)
            patch = gr.Number(16, precision=0)
            out_image, out_json = gr.Image(), gr.JSON()
            gr.Button("Echo").click(echo, [image, size, patch], [out_image, out_json], api_name="echo")
    return demo


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7861)
    args = parser.parse_args()
    import uvicorn
    from fastapi import FastAPI

    app = gr.mount_gradio_app(FastAPI(), build(), path="/")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
