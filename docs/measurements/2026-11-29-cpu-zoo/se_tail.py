import torch, time, statistics
torch.set_num_threads(2)
torch.manual_seed(0)
cl = torch.channels_last
shapes = [(256, 56, 3), (512, 28, 4), (1024, 14, 6), (2048, 7, 3)]
N = 8
def t(fn, iters=20):
    for _ in range(3): fn()
    ts = []
    for _ in range(iters):
        a = time.perf_counter(); fn(); ts.append(time.perf_counter() - a)
    return statistics.median(ts)
tot = {}
with torch.no_grad():
    for C, H, reps in shapes:
        hid = C // 16
        x = torch.randn(N, C, H, H).contiguous(memory_format=cl)
        sc = torch.randn(N, C, H, H).contiguous(memory_format=cl)
        w1 = torch.randn(hid, C, 1, 1) * 0.05; b1 = torch.zeros(hid)
        w2 = torch.randn(C, hid, 1, 1) * 0.05; b2 = torch.zeros(C)
        def gate(x):
            s = x.mean((2, 3), keepdim=True)
            s = torch.conv2d(s, w1, b1).relu()
            return torch.conv2d(s, w2, b2).sigmoid()
        def resnetc_like():  # attention out of place, then add_, relu_ (as src/runtime/infer.rs)
            y = x * gate(x); y.add_(sc); y.relu_(); return y
        def mean_only():
            return x.mean((2, 3), keepdim=True)
        def gate_only():
            return gate(x)
        def mul_only():
            return x * gate_only.g
        gate_only.g = gate(x)
        def addrelu_only():
            y = x.clone(); return y
        def inplace_tail():  # gate, then mul_ / add_ / relu_ in place
            g = gate(x); y = x.clone()  # clone stands in for conv3's fresh output
            y.mul_(g).add_(sc).relu_(); return y
        def clone_only():
            return x.clone()
        fused = torch.compile(lambda x, sc: torch.relu(x * gate(x) + sc), dynamic=False)
        r = dict(resnetc_like=t(resnetc_like), mean=t(mean_only), gate=t(gate_only), mul=t(mul_only),
                 inplace_minus_clone=t(inplace_tail) - t(clone_only), compiled_tail=t(lambda: fused(x, sc)))
        y = resnetc_like()
        print(f"C={C} H={H} x{reps}: " + ", ".join(f"{k} {v*1e3:.2f} ms" for k, v in r.items()),
              "| out channels_last:", y.is_contiguous(memory_format=cl))
        for k, v in r.items(): tot[k] = tot.get(k, 0) + v * reps
print("per batch-8 forward, 16 blocks:", ", ".join(f"{k} {v*1e3:.1f} ms" for k, v in tot.items()))
