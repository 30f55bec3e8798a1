"""tools/kernel_attribution.py: kernels of an optimized HLO module attributed to the innermost jaxsim frame
of their stack (a hand-made module: fused ops are inside their fusion's kernel; parameters, tuples and
control flow are no kernels; a frame outside jaxsim is walked up to its jaxsim parent)."""

import importlib.util
from pathlib import Path

MODULE = """HloModule m, is_scheduled=true

FileNames
1 "/site-packages/jaxsim/sim/a.py"
2 "/site-packages/jax/_src/numpy/b.py"

FunctionNames
1 "f"
2 "g"

FileLocations
1 {file_name_id=1 function_name_id=1 line=3 end_line=3 column=1 end_column=2}
2 {file_name_id=2 function_name_id=2 line=5 end_line=5 column=1 end_column=2}

StackFrames
1 {file_location_id=1 parent_frame_id=0}
2 {file_location_id=2 parent_frame_id=1}
3 {file_location_id=2 parent_frame_id=0}

%fused_computation (p: f32[4]) -> f32[4] {
  %p = f32[4]{0} parameter(0)
  ROOT %n = f32[4]{0} negate(%p), metadata={stack_frame_id=1}
}

%body (s: (s32[])) -> (s32[]) {
  %s = (s32[]) parameter(0)
  %i = s32[] get-tuple-element(%s), index=0
  %one = s32[] constant(1)
  %j = s32[] add(%i, %one), metadata={stack_frame_id=3}
  ROOT %t = (s32[]) tuple(%j)
}

ENTRY %main (a: f32[4]) -> f32[4] {
  %a = f32[4]{0} parameter(0)
  %f = f32[4]{0} fusion(%a), kind=kLoop, calls=%fused_computation, metadata={op_name="x" stack_frame_id=2}
  %c = f32[4]{0} copy(%f)
  %w = (s32[]) while(%x), condition=%cond, body=%body
  ROOT %s = f32[4]{0} add(%c, %c), metadata={stack_frame_id=1}
}
"""


def _tool():
    path = Path(__file__).resolve().parents[1] / "tools" / "kernel_attribution.py"
    spec = importlib.util.spec_from_file_location("kernel_attribution", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_kernels_are_attributed_to_the_innermost_jaxsim_frame():
    kernels, counts = _tool().attribute(MODULE)
    assert kernels == 4  # fusion, copy, add in the entry; add in the while body
    assert counts == {"sim/a.py:f": 2, "(no location)": 1, "(no jaxsim frame)": 1}
