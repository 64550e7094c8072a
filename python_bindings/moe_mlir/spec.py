"""Layer specs: the options of one MoE layer, as the tools' SPEC text."""

from __future__ import annotations

import dataclasses

from ._errors import CompileError, compiler_module, has_compiler

# Keys of the spec text, in the compiler's canonical order, and the Python
# field each one comes from.
_FIELDS = {
    "tokens": "tokens",
    "hidden": "hidden",
    "ffn": "ffn",
    "experts": "experts",
    "top_k": "top_k",
    "router": "router",
    "bias": "bias",
    "capacity": "capacity",
    "normalize": "normalize",
    "scaling": "scaling",
    "activation": "activation",
    "dtype": "dtype",
    "dynamic": "dynamic",
    "n_group": "n_group",
    "topk_group": "topk_group",
    "aux_loss": "aux_loss",
}


def _format(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)
    return str(value)


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """One MoE layer (ARCHITECTURE.md, "Semantics"): shapes and routing.

    `tokens` is the token count of the program (with `dynamic=True` the
    token dimension is dynamic and any count runs). Validation is the
    compiler's: `text()` and `compile()` raise CompileError naming the key.
    """

    tokens: int
    hidden: int
    ffn: int
    experts: int
    top_k: int
    router: str = "softmax"  # or "sigmoid"
    bias: bool = False
    capacity: float = 0.0  # capacity factor; 0 = dropless
    normalize: bool = True
    scaling: float = 1.0
    activation: str = "silu_glu"  # or "gelu_glu"
    dtype: str = "f32"  # or "bf16"
    dynamic: bool = False
    n_group: int = 0
    topk_group: int = 0
    aux_loss: float = 0.0  # load-balancing loss coefficient (training)

    def text(self) -> str:
        """The spec as the tools take it (`moe-run --layer TEXT`)."""
        items = []
        for key, field in _FIELDS.items():
            value = getattr(self, field)
            # Keys left at their defaults stay out, so that a build without
            # a newer key (aux_loss) still reads the spec.
            default = LayerSpec.__dataclass_fields__[field].default
            if key in ("tokens", "hidden", "ffn", "experts", "top_k") or \
                    value != default:
                items.append(f"{key}={_format(value)}")
        return ",".join(items)

    def canonical(self) -> str:
        """Every key in the compiler's order; raises CompileError if invalid."""
        return compiler_module("LayerSpec.canonical()").canonical_layer_spec(
            self.text())

    def replace(self, **changes) -> "LayerSpec":
        return dataclasses.replace(self, **changes)

    @staticmethod
    def parse(text: str) -> "LayerSpec":
        """A preset ("tiny", "mixtral,tokens=64") or key=value list.
        Without the compiler module (runtime only) a key=value list is read
        as it is: no presets, and no validation beyond the keys."""
        if has_compiler():
            text = compiler_module("").canonical_layer_spec(text)
        values = {}
        for item in text.split(","):
            key, equals, raw = item.partition("=")
            if not equals or key not in _FIELDS:
                raise CompileError(
                    f"moe_mlir: cannot read '{item}' of layer spec '{text}' "
                    "without the compiler module (key=value items of "
                    f"{', '.join(_FIELDS)}; presets need the compiler)")
            values[key] = raw
        kwargs = {}
        for key, raw in values.items():
            field = _FIELDS.get(key)
            if field is None:
                continue
            kind = LayerSpec.__dataclass_fields__[field].type
            if kind == "int":
                kwargs[field] = int(raw)
            elif kind == "bool":
                kwargs[field] = raw == "1"
            elif kind == "float":
                kwargs[field] = float(raw)
            else:
                kwargs[field] = raw
        return LayerSpec(**kwargs)

    def __str__(self) -> str:
        return self.text()

