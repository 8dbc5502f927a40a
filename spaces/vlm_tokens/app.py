"""Modern VLMs: the Gradio page. The maths lives in compute.py, the tiny VLM's loop in vlm.py.

Both import torch or transformers, so each handler imports them on first use: the hub builds every page at
start-up. What ``render()`` needs (families, presets, caps, the tiny VLM's shipped facts) comes from the
torch-free ``options.py``; plots import matplotlib where they draw.
"""

from __future__ import annotations

import gradio as gr

from hub.registry import get as tutorial
from shared.images import MAX_PIXELS, MAX_SIDE, MIN_SIDE
from shared.ui import downloads, page, raw_values, sample_examples, user_errors, with_downloads

from . import options
from .options import (
    CUSTOM_CAPS,
    DEFAULT_DTYPE,
    DEFAULT_FAMILY,
    DEFAULT_LM,
    DEFAULT_QUESTION,
    DTYPES,
    EXAMPLE_QUESTIONS,
    FAMILIES,
    LM_NAMES,
    MAX_QUESTION_CHARS,
    PANORAMA_SAMPLE,
    VLM_MODEL,
)

SLUG = "vlm_tokens"
TUTORIAL = tutorial(SLUG)  # title and emoji are typed once, in hub/registry.py
TITLE = TUTORIAL.title
WEIGHTS: tuple[str, ...] = options.VLM_WEIGHTS

PAPERS = {
    "llava": "[Liu et al., 2023](https://arxiv.org/abs/2304.08485)",
    "llava15": "[Liu et al., 2024 (LLaVA-1.5)](https://arxiv.org/abs/2310.03744)",
    "llavanext": "[Liu et al., 2024 (LLaVA-NeXT blog)](https://llava-vl.github.io/blog/2024-01-30-llava-next/)",
    "qwen2vl": "[Wang et al., 2024 (Qwen2-VL)](https://arxiv.org/abs/2409.12191)",
    "idefics3": "[Laurençon et al., 2024 (Idefics3)](https://arxiv.org/abs/2408.12637)",
    "paligemma": "[Beyer et al., 2024 (PaliGemma)](https://arxiv.org/abs/2407.07726)",
    "kaplan": "[Kaplan et al., 2020](https://arxiv.org/abs/2001.08361)",
}
COUNT_HEADERS = ["family", "visual tokens", "encoder canvas (h×w)", "tiles", "count", "read from"]
COST_HEADERS = ["family", "visual tokens", "LM", "LM parameters", "N (non-embedding)", "prefill TFLOPs (2·N·T)",
                "attention term TFLOPs", "KV cache MB", "layers × kv heads × head dim"]
TOKEN_HEADERS = ["step", "token", "probability", "top alternatives", "attention on the image"]


# --------------------------------------------------------------------------------------
#                                   Text
# --------------------------------------------------------------------------------------

def _count_intro() -> str:
    """The families' rules, with every setting read from the released configurations in options.py."""
    c15, p14, tile, q = options.LLAVA15["crop_size"]["height"], options.PATCH_14, options.LLAVA_NEXT_TILE, options.QWEN2VL
    pins = ", ".join(f"{h}×{w}" for h, w in options.LLAVA_NEXT["image_grid_pinpoints"])
    longest, crop = options.IDEFICS3["size"]["longest_edge"], options.IDEFICS3_CROP
    per_crop, scale = options.IDEFICS3_TOKENS_PER_CROP, options.IDEFICS3_SCALE_FACTOR
    patch_floats = 3 * q["temporal_patch_size"] * q["patch_size"] ** 2  # channels x frames x pixels: one row of pixel_values
    return (
        f"# {TUTORIAL.emoji} {TUTORIAL.title}\n"
        f"A VLM ({PAPERS['llava']}) turns an image into **visual tokens** that sit in the LM's prompt like words. "
        "How many depends on the family's image processor. Each count below comes from the real `transformers` "
        "processor, built offline with the released settings of its model (cited in `compute.py`), and is read "
        "from its output shapes: `pixel_values` tiles, Qwen2-VL's `image_grid_thw`, Idefics3's rows and columns. "
        "LLaVA-NeXT's count is transformers' own `LlavaNextProcessor._get_number_of_features`. torchvision is not "
        "installed here, so transformers uses its PIL processors: same resize rules, same shapes.\n\n"
        f"- **LLaVA-1.5** ({PAPERS['llava15']}): shortest side to {c15}, centre crop, ({c15}/{p14})² = "
        f"{(c15 // p14) ** 2} tokens.\n"
        f"- **LLaVA-NeXT** ({PAPERS['llavanext']}): the grid pinpoint (of {pins}) that keeps most of the image, "
        f"{tile}-px tiles plus the base image (the whole image at {tile}×{tile}, counted here as one of the tiles); "
        "padding is removed from the features (unpadding) and each row of features ends with a newline token.\n"
        f"- **Qwen2-VL** ({PAPERS['qwen2vl']}): both sides rounded to multiples of {q['patch_size'] * q['merge_size']}, "
        f"pixels kept within [{q['min_pixels']:,}, {q['max_pixels']:,}], {q['patch_size']}-px patches merged "
        f"{q['merge_size']}×{q['merge_size']}: tokens = t·h·w/{q['merge_size'] ** 2} from `image_grid_thw`. It refuses "
        f"images whose long side is more than {options.QWEN2VL_MAX_ASPECT_RATIO} times the short side.\n"
        f"- **Idefics3** ({PAPERS['idefics3']}): longest edge to {longest} ({longest // crop} × {crop}), both sides up "
        f"to multiples of {crop}, {crop}-px crops plus the global image (counted as one of the tiles), "
        f"{per_crop} image tokens per crop (row/column markers not counted). {per_crop} = ({crop}/{p14})² / "
        f"{scale}²: the released Idefics3-8B config has pixel-shuffle `scale_factor` {scale}, not 3 (3 does not "
        f"divide a {crop // p14}-patch side; SmolVLM's larger crops use 3). Every image is first resized to a {longest}-px long side, so the count "
        f"depends on the **aspect ratio, not the size**: a 2×2 image costs as much as a {longest}×{longest} one "
        "(see the table).\n"
        f"- **PaliGemma** ({PAPERS['paligemma']}) at {', '.join(map(str, options.PALIGEMMA_SIZES.values()))}: "
        f"squashed to a square, (size/{p14})² tokens.\n\n"
        f"Images must be at least {MIN_SIDE}×{MIN_SIDE} pixels (a 1×1 image is refused) and at most {MAX_SIDE:,} "
        f"pixels a side and {MAX_PIXELS // 1_000_000} megapixels (larger ones are refused, not downscaled). "
        f"Qwen2-VL's processor holds every {q['patch_size']}-px patch as {patch_floats} floats "
        f"({q['max_pixels'] // q['patch_size'] ** 2 * patch_floats * 4 / 1e6:.0f} MB of float32 at its "
        f"{q['max_pixels'] / 1e6:.1f} MP cap), so above "
        f"{options.QWEN_PROCESSOR_MAX_PATCHES:,} patches its count comes from the same processor's "
        "`get_number_of_image_patches` (its own `smart_resize`), without the pixels."
    )


def _count_summary(stats: dict) -> str:
    notes = "".join(f"\n- {n}" for n in stats["notes"])
    h, w = stats["original"]
    ch, cw = stats["resized"]
    return (f"**{stats['label']}: {stats['visual_tokens']:,} visual tokens** for this {w}×{h} image "
            f"(encoder canvas {ch}×{cw}, {stats['tiles']} tile{'s' if stats['tiles'] > 1 else ''}). "
            f"Count: {stats['formula']}; read from {stats['source']}.{notes}")


def _cost_intro() -> str:
    return (
        "The LM reads the visual tokens before it writes a word. **Prefill FLOPs ≈ 2 · N · T** for T tokens and "
        f"N non-embedding parameters ({PAPERS['kaplan']}, Table 1: a forward pass costs 2N FLOPs per token). "
        "It leaves out attention's context term, 2 · n_layer · n_ctx · d_attn per token (same table), which "
        "for T tokens attending to each other is **2 · n_layer · T² · d_attn**: shown in its own column and "
        "small beside 2NT until T approaches N / (n_layer · d_attn) tokens. "
        "**KV cache = 2 (K and V) · layers · kv_heads · head_dim · T · bytes** per element "
        f"({', '.join(f'{k} {v}' for k, v in DTYPES.items())} bytes). The preset LMs are their released "
        "configs (cited in `compute.py`) in `transformers` config classes, instantiated on the meta device and "
        "counted; N leaves out the token embedding and the output projection, as Kaplan's N does."
    )


def _yes_no_note(held_out: dict) -> str:
    """Says so when the yes/no questions are answered at chance (the measured accuracy decides, not this text)."""
    exists = held_out.get("exists")
    if exists is None or exists >= 0.6:
        return ""
    return (f" Its yes/no answers ({exists:.0%} right, chance is 50%) are a coin flip: it names the shape it sees, "
            "then says yes or no without comparing it with the question. Matching a word with the image gives "
            "gradient descent no first cue, and this run never found one (its model card lists the runs tried).")


def _vlm_intro(f: dict) -> str:
    if not f:
        return (f"The tiny VLM `{VLM_MODEL}` is not trained yet: `python -m shared.training {VLM_MODEL}`.")
    m = f["metrics"]
    acc = options.vlm_accuracies(m)

    def accs(key: str) -> str:
        return ", ".join(f"{k} {v:.1%}" for k, v in acc[key].items()) or "not measured"

    params = f"{m['parameters']:,} parameters" if "parameters" in m else "its parameters"
    return (
        f"`{VLM_MODEL}` is `transformers`' `LlavaForConditionalGeneration` ({PAPERS['llava']}, MLP projector as "
        f"in {PAPERS['llava15']}) trained here on shapes questions: a CLIP vision tower ({f['image']} px, patch "
        f"{f['patch']}, width {f['vision_width']}, {f['vision_layers']} layers, features of layer "
        f"{f['feature_layer']}: {f['grid']}×{f['grid']} = {f['image_tokens']} image tokens), a {f['projector']} MLP "
        f"projector, and a Llama LM ({f['lm_layers']} layers, width {f['lm_width']}, {f['lm_heads']} heads, "
        f"{f['vocab']}-word vocabulary); {params} (its config.json and metrics.json).\n\n"
        f"Exact-match accuracy of the greedy answer on {m.get('n', '?')} held-out images: {accs('held-out')}; "
        f"on {m.get('n_shifted', '?')} images of the shifted split (colour/background pairs never trained on): "
        f"{accs('shifted')}; on {m.get('n_independent', '?')} shapes drawn by matplotlib (a renderer it "
        f"never saw): {accs('independent')}.{_yes_no_note(acc['held-out'])}\n\n"
        f"Decoding is greedy, so an answer is deterministic. Questions: at most {MAX_QUESTION_CHARS} characters; "
        "the tiny model knows only the words of its training questions (unknown ones are reported). With network, "
        "a real small VLM (`HuggingFaceTB/SmolVLM-256M-Instruct`, its own chat template and tiling) goes through "
        "the same loader and the same loop; offline it is refused with a message naming the tiny one."
    )


# --------------------------------------------------------------------------------------
#                                   Figures
# --------------------------------------------------------------------------------------

def _canvas(image, stats: dict):
    """The image as the encoder's canvas holds it: resized into its content box, grey padding around."""
    import numpy as np
    from PIL import Image

    ch, cw = stats["resized"]
    k = min(1.0, 900 / max(ch, cw))  # a display copy at most 900 px: coordinates stay in canvas pixels
    x0, y0, x1, y1 = stats["content_on_canvas"]
    sx0, sy0, sx1, sy1 = stats["seen_in_original"]
    seen = image.crop((int(sx0), int(sy0), int(round(sx1)), int(round(sy1))))
    board = Image.new("RGB", (max(1, round(cw * k)), max(1, round(ch * k))), (150, 150, 150))
    size = (max(1, round((x1 - x0) * k)), max(1, round((y1 - y0) * k)))
    board.paste(seen.resize(size), (round(x0 * k), round(y0 * k)))
    return np.asarray(board)


def _count_figure(image, stats: dict):
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    aspect = max(stats["original"][0] / stats["original"][1], stats["resized"][0] / stats["resized"][1])
    fig = Figure(figsize=(10, min(5.5, max(2.4, 4.6 * aspect + 0.9))))
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    left.imshow(image)
    h, w = stats["original"]
    for i, (x0, y0, x1, y1) in enumerate(stats["tile_boxes_original"]):
        left.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=2, ec="yellow", ls="--"))
        if len(stats["tile_boxes_original"]) > 1:
            left.text((x0 + x1) / 2, (y0 + y1) / 2, str(i + 1), color="yellow", ha="center", va="center",
                      fontsize=12, weight="bold")
    left.set_xlim(min(0, *(b[0] for b in stats["tile_boxes_original"])) - 2,
                  max(w, *(b[2] for b in stats["tile_boxes_original"])) + 2)
    left.set_ylim(max(h, *(b[3] for b in stats["tile_boxes_original"])) + 2,
                  min(0, *(b[1] for b in stats["tile_boxes_original"])) - 2)
    left.set_title(f"your image {w}×{h}: what each tile covers", fontsize=10, loc="right")
    ch, cw = stats["resized"]
    right.imshow(_canvas(image, stats), extent=(0, cw, ch, 0))
    grid = stats["token_grid"]
    if grid:  # one token per cell (Qwen2-VL: a merged 28-px cell); lines thinned past 64 a side
        rows, cols = grid
        step = max(1, max(rows, cols) // 64)
        for r in range(0, rows + 1, step):
            right.axhline(r * ch / rows, color="white", lw=0.4, alpha=0.6)
        for c in range(0, cols + 1, step):
            right.axvline(c * cw / cols, color="white", lw=0.4, alpha=0.6)
    for i, (x0, y0, x1, y1) in enumerate(stats["tile_boxes_canvas"]):
        right.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=2, ec="yellow"))
        if len(stats["tile_boxes_canvas"]) > 1:
            right.text((x0 + x1) / 2, (y0 + y1) / 2, str(i + 1), color="yellow", ha="center", va="center",
                       fontsize=12, weight="bold")
    extra = " + 1 global image" if stats["global_image_counted_as_tile"] else ""
    thinned = f" (grid lines every {max(grid) // 64} tokens)" if grid and max(grid) > 64 else ""
    right.set_title(f"{stats['label']}: canvas {ch}×{cw}, {len(stats['tile_boxes_canvas'])} tile(s){extra}\n"
                    f"{stats['visual_tokens']:,} visual tokens{thinned}", fontsize=10)
    for ax in (left, right):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout(rect=(0, 0, 1, 0.9))  # room above for the component's label
    return fig


def _cost_figure(rows: list[dict]):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.6))
    names = [r["family"] for r in rows]
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    ax1.bar(names, [r["prefill_tflops"] for r in rows], label="2·N·T")
    ax1.bar(names, [r["attention_term_tflops"] for r in rows], bottom=[r["prefill_tflops"] for r in rows],
            label="+ attention term 2·L·T²·d_attn")
    ax1.set_ylabel("TFLOPs to prefill the visual tokens")
    ax1.legend(fontsize=8)
    ax2.bar(names, [r["kv_cache_mb"] for r in rows], color="tab:green")
    ax2.set_ylabel(f"KV cache MB ({rows[0]['kv_dtype'] if rows else ''})")
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", rotation=35, labelsize=8)
    fig.tight_layout()
    return fig


def _attention_figure(ans):
    import numpy as np
    from matplotlib.figure import Figure

    steps = len(ans.tokens)
    fig = Figure(figsize=(max(2.6 * steps, 5.2), 3.1))
    seen = np.asarray(ans.image)
    for i in range(steps):
        ax = fig.add_subplot(1, steps, i + 1)
        ax.imshow(seen)
        if ans.grid is not None:
            att = ans.attention[i]
            ax.imshow(att, cmap="magma", alpha=0.6, extent=(0, seen.shape[1], seen.shape[0], 0),
                      interpolation="nearest")
            share = float(att.sum())
        else:
            share = float(ans.attention[i].sum())
        ax.set_title(f"{i + 1}: {ans.tokens[i]!r}\n{share:.0%} of its attention on the image", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("attention of each generated token over the image tokens\n(mean over layers and heads; "
                 "colour scale per panel)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.84))
    return fig


# --------------------------------------------------------------------------------------
#                                   Handlers
# --------------------------------------------------------------------------------------

@user_errors
def vlm_tokens_count(image, family, progress=gr.Progress()):
    """Visual tokens, resize and tiling of ``image`` in ``family``: the stats JSON."""
    family = options.check_family(family)
    progress(0, desc=f"running the {options.family_label(family)} processor")
    from . import compute

    return compute.count_tokens(image, family).stats()


@user_errors
def count_details(image, family, stats, progress=gr.Progress()):
    """The tiling plot of the chosen family, every family's count and the summary, with the stats shown passed
    through so the downloads hold them too (chained after the endpoint)."""
    import pandas as pd

    family = options.check_family(family)
    progress(0, desc="running all seven processors")
    from . import compute

    counts = compute.count_all(image)
    rows = []
    for fam, c in counts.items():
        if isinstance(c, str):
            rows.append([fam, "refused", "", "", c, ""])
        else:
            rows.append([fam, c.visual_tokens, f"{c.resized[0]}×{c.resized[1]}", c.tiles, c.formula, c.source])
    chosen = counts[family]
    if isinstance(chosen, str):
        raise ValueError(chosen)
    shown = chosen.stats()
    from shared.images import load_image

    return (_count_figure(load_image(image), shown), pd.DataFrame(rows, columns=COUNT_HEADERS),
            _count_summary(shown), stats)


@user_errors
def vlm_tokens_sizes(progress=gr.Progress()):
    """``visual_tokens`` of a flat image at five sizes (2×2 up to 4000×3000) in every family."""
    import pandas as pd

    progress(0, desc="running all seven processors on five image sizes")
    from . import compute

    rows = compute.size_table()
    return pd.DataFrame([[r["size"], *(r[f] for f in FAMILIES)] for r in rows],
                        columns=["image (w×h)", *FAMILIES])


@user_errors
def vlm_tokens_cost(image, lm, dtype, params_billion, layers, kv_heads, head_dim, progress=gr.Progress()):
    """Prefill FLOPs and KV-cache memory of ``image``'s visual tokens in every family: the stats JSON."""
    options.check_lm(lm)
    options.check_dtype(dtype)
    if lm == options.CUSTOM_LM:
        options.check_custom(params_billion, layers, kv_heads, head_dim)
    progress(0, desc="counting tokens and LM parameters (meta device)")
    from . import compute

    table = compute.cost_table(image, lm, dtype, params_billion, layers, kv_heads, head_dim)
    return {"lm": lm, "kv_dtype": dtype, "bytes_per_element": DTYPES[dtype],
            "rows": [c.row() for c in table.values() if not isinstance(c, str)],
            "refused": {f: c for f, c in table.items() if isinstance(c, str)}}


@user_errors
def cost_details(stats):
    """The cost table, plot and summary of the stats shown, which pass through for the downloads."""
    import pandas as pd

    rows = [[r["family"], r["visual_tokens"], r["lm"], f"{r['lm_params']:,}", f"{r['non_embedding_params']:,}",
             round(r["prefill_tflops"], 3), round(r["attention_term_tflops"], 3), round(r["kv_cache_mb"], 1),
             f"{r['layers']} × {r['kv_heads']} × {r['head_dim']}"] for r in stats["rows"]]
    refused = "".join(f"\n- {f}: {m}" for f, m in stats["refused"].items())
    summary = (f"LM: **{stats['lm']}**; KV cache in {stats['kv_dtype']} ({stats['bytes_per_element']} bytes per "
               f"number).{refused}")
    return pd.DataFrame(rows, columns=COST_HEADERS), _cost_figure(stats["rows"]), summary, stats


@user_errors
def vlm_tokens_answer(image, question, model=VLM_MODEL, progress=gr.Progress()):
    """The VLM's greedy answer to ``question`` about ``image`` (``model``: the tiny VLM unless named)."""
    options.check_question(question)
    model = options.check_vlm(model)
    if image is None:
        raise ValueError("no image given: upload an image or pick a sample.")
    progress(0, desc=f"loading {model}")
    from . import vlm

    return vlm.answer(image, question, model).text


def _prompt_markdown(ans) -> str:
    start, end = ans.image_span
    shown = " ".join([*ans.prompt_tokens[:start], f"<image>×{end - start}", *ans.prompt_tokens[end:]])
    grid = f" ({ans.grid[0]}×{ans.grid[1]} grid)" if ans.grid else ""
    return (f"The prompt as the LM reads it ({len(ans.prompt_tokens)} tokens): `<image>` expanded in place into "
            f"{end - start} image tokens (positions {start} to {end - 1}), one per patch feature{grid}:\n\n"
            f"`{shown}`  →  `{' '.join(ans.tokens)}`")


@user_errors
def answer_details(image, question, model, progress=gr.Progress()):
    """Everything behind the answer: summary, token table, prompt, attention maps, stats (after the endpoint)."""
    import pandas as pd

    options.check_question(question)
    model = options.check_vlm(model)
    progress(0, desc="answering token by token")
    from . import vlm

    ans = vlm.answer(image, question, model)
    rows = []
    for i, (tok, alts) in enumerate(zip(ans.tokens, ans.top, strict=True)):
        p = dict(alts).get(tok, alts[0][1])
        rows.append([i + 1, tok, round(p, 4), ", ".join(f"{t} {q:.3f}" for t, q in alts),
                     round(float(ans.attention[i].sum()), 4)])
    extra = []
    if ans.unknown_words:
        extra.append(f"Words it never saw in training (read as unknown): {', '.join(ans.unknown_words)}.")
    if ans.ood_message:
        extra.append(ans.ood_message)
    summary = f"**Answer: {ans.text or '(empty)'}**\n\n" + "\n\n".join(extra)
    start, end = ans.image_span
    highlighted = [(t + " ", "image" if start <= i < end else None) for i, t in enumerate(ans.prompt_tokens)]
    highlighted += [(t + " ", "answer") for t in ans.tokens]
    return (summary, pd.DataFrame(rows, columns=TOKEN_HEADERS), _prompt_markdown(ans), highlighted,
            _attention_figure(ans), ans.stats())


# --------------------------------------------------------------------------------------
#                                   Page
# --------------------------------------------------------------------------------------

def render(demo: gr.Blocks) -> None:
    samples = sample_examples()
    panorama = str(PANORAMA_SAMPLE) if PANORAMA_SAMPLE.is_file() else (samples[0] if samples else None)

    with gr.Tab("How many tokens does my image cost?"):
        gr.Markdown(_count_intro())
        with gr.Row():
            with gr.Column(scale=1):
                image = gr.Image(panorama, label="image", type="pil", height=220)
                family = gr.Dropdown([(f"{label}", key) for key, (label, _) in FAMILIES.items()],
                                     value=DEFAULT_FAMILY, label="family")
                count_btn = gr.Button("Count visual tokens", variant="primary")
                gr.Examples([[p] for p in [panorama, *samples[:3]] if p], inputs=[image])
            with gr.Column(scale=2):
                count_md = gr.Markdown()
                count_plot = gr.Plot(label="resize and tiling")
        count_table = gr.Dataframe(label="every family, this image", headers=COUNT_HEADERS)
        count_stats = gr.JSON(label="stats (the endpoint vlm_tokens_count)")
        count_files = downloads()
        gr.Markdown("**Five image sizes, every family**: a flat image of each size through the same processors. "
                    "The 2×2 image is the smallest accepted. LLaVA-1.5 and PaliGemma never change; Qwen2-VL grows "
                    "with the pixels; Idefics3 follows the aspect ratio only; LLaVA-NeXT picks the pinpoint that "
                    "keeps most of the image's own pixels, so a small square (up to 336×336) gets the smallest "
                    "canvas and a larger one the 672×672 canvas.")
        sizes_btn = gr.Button("Count five sizes", variant="primary")
        sizes_table = gr.Dataframe(label="visual tokens by image size")
        sizes_files = downloads()

    with gr.Tab("Cost of those tokens"):
        gr.Markdown(_cost_intro())
        gr.Markdown("The image is the one of the first tab.")
        with gr.Row():
            lm = gr.Dropdown(list(LM_NAMES), value=DEFAULT_LM, label="LM")
            dtype = gr.Dropdown(list(DTYPES), value=DEFAULT_DTYPE, label="KV-cache dtype")
        with gr.Row():
            custom = [gr.Number(value=CUSTOM_CAPS[k][2], minimum=CUSTOM_CAPS[k][0], maximum=CUSTOM_CAPS[k][1],
                                label=f"custom LM: {k.replace('_', ' ')} ({CUSTOM_CAPS[k][0]:g}–{CUSTOM_CAPS[k][1]:g})")
                      for k in ("params_billion", "layers", "kv_heads", "head_dim")]
        cost_btn = gr.Button("Cost", variant="primary")
        cost_md = gr.Markdown()
        cost_plot = gr.Plot(label="prefill FLOPs and KV cache per family")
        cost_table = gr.Dataframe(label="cost of the visual tokens", headers=COST_HEADERS)
        cost_stats = gr.JSON(label="stats (the endpoint vlm_tokens_cost)")
        cost_files = downloads()

    with gr.Tab("A tiny VLM, live"):
        gr.Markdown(_vlm_intro(options.vlm_facts()))
        with gr.Row():
            with gr.Column(scale=1):
                vlm_image = gr.Image(samples[0] if samples else None, label="image", type="pil", height=200)
                question = gr.Textbox(DEFAULT_QUESTION, label=f"question (at most {MAX_QUESTION_CHARS} characters)",
                                      max_lines=2)
                vlm_model = gr.Dropdown(list(options.VLM_MODELS), value=VLM_MODEL, label="model")
                ask_btn = gr.Button("Answer", variant="primary")
                gr.Examples([[q] for q in EXAMPLE_QUESTIONS], inputs=[question])
                gr.Examples([[p] for p in samples], inputs=[vlm_image])
            with gr.Column(scale=2):
                answer = gr.Textbox(label="answer (the endpoint vlm_tokens_answer)", interactive=False)
                answer_md = gr.Markdown()
                steps = gr.Dataframe(label="generated token by token", headers=TOKEN_HEADERS)
        prompt_md = gr.Markdown()
        prompt_hl = gr.HighlightedText(label="every prompt token (image tokens highlighted) and the answer",
                                       color_map={"image": "orange", "answer": "green"}, show_legend=True)
        att_plot = gr.Plot(label="text→image attention of each generated token")
        vlm_stats = gr.JSON(label="stats")
        vlm_files = downloads()

    # ---- events (value inputs reach the handlers as sent; their checks answer bad API input) ----
    count_outs = [count_plot, count_table, count_md]
    raw_values(count_btn.click, vlm_tokens_count, [image, family], count_stats, api_name=f"{SLUG}_count").success(
        with_downloads(count_details, count_outs + [count_stats]), [image, family, count_stats],
        count_outs + [count_stats, count_files], api_visibility="private")
    raw_values(sizes_btn.click, with_downloads(vlm_tokens_sizes, [sizes_table]), [], [sizes_table, sizes_files],
               api_name=f"{SLUG}_sizes")
    raw_values(cost_btn.click, vlm_tokens_cost, [image, lm, dtype, *custom], cost_stats,
               api_name=f"{SLUG}_cost").success(
        with_downloads(cost_details, [cost_table, cost_plot, cost_md, cost_stats]), cost_stats,
        [cost_table, cost_plot, cost_md, cost_stats, cost_files], api_visibility="private")
    vlm_outs = [answer_md, steps, prompt_md, prompt_hl, att_plot, vlm_stats]
    raw_values(ask_btn.click, vlm_tokens_answer, [vlm_image, question, vlm_model], answer,
               api_name=f"{SLUG}_answer").success(
        with_downloads(answer_details, vlm_outs), [vlm_image, question, vlm_model], vlm_outs + [vlm_files],
        api_visibility="private")


def build() -> gr.Blocks:
    return page(render, TITLE)


if __name__ == "__main__":
    build().launch()
