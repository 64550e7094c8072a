"""The card's dense bf16 GEMM rate (cuBLAS through PyTorch) on the shapes of mixtral's two expert GEMMs
and on 8192^3, each timed for about SECONDS (median of CUDA-event times per call), so that a clock
sampler running beside it (bench/clocks_device.sh) sees the clocks and power of each in steady state.
usage: dense_ceiling.py [SECONDS]   prints one JSON line per shape, with its start and end (time.time())."""
import json, sys, time
import torch

SHAPES = [  # name, M, K, N: C[M, N] = A[M, K] B[K, N]
    ("mixtral_glu", 16384, 4096, 28672),   # T*k rows x H, times w1's gate and up columns
    ("mixtral_store", 16384, 14336, 4096),  # T*k rows x F, times w2
    ("square_8192", 8192, 8192, 8192),
]
seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
g = torch.Generator(device="cuda").manual_seed(0)
for name, m, k, n in SHAPES:
    a = torch.randn(m, k, device="cuda", dtype=torch.bfloat16, generator=g)
    b = torch.randn(k, n, device="cuda", dtype=torch.bfloat16, generator=g) * k ** -0.5
    c = torch.empty(m, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(5):
        torch.mm(a, b, out=c)
    torch.cuda.synchronize()
    start = time.time()
    times = []
    while time.time() - start < seconds:
        s = torch.cuda.Event(enable_timing=True); e = torch.cuda.Event(enable_timing=True)
        s.record(); torch.mm(a, b, out=c); e.record(); e.synchronize()
        times.append(s.elapsed_time(e))
    end = time.time()
    times.sort()
    ms = times[len(times) // 2]
    print(json.dumps(dict(shape=name, m=m, k=k, n=n, ms=round(ms, 3), tflops=round(2 * m * k * n / ms / 1e9, 1),
                          calls=len(times), start=start, end=end)), flush=True)
    del a, b, c
