import torch, time, statistics
torch.set_num_threads(2)
cl = torch.channels_last
shapes = [(256, 56, 3), (512, 28, 4), (1024, 14, 6), (2048, 7, 3)]
N = 8
def t(fn, iters=30):
    for _ in range(3): fn()
    ts = []
    for _ in range(iters):
        a = time.perf_counter(); fn(); ts.append(time.perf_counter() - a)
    return statistics.median(ts)
tot = {}
with torch.no_grad():
    for C, H, reps in shapes:
        x = torch.randn(N, C, H, H).contiguous(memory_format=cl)
        sc0 = torch.randn(N, C, H, H).contiguous(memory_format=cl)
        g = torch.rand(N, C, 1, 1)
        sc = sc0.clone()
        r = dict(
            mul_add_relu_=t(lambda: (x * g).add_(sc0).relu_()),
            addcmul_relu_=t(lambda: sc.addcmul_(x, g).relu_()),
            add_relu_=t(lambda: x.add(sc0).relu_()),
        )
        print(f"C={C} H={H}: " + ", ".join(f"{k} {v*1e3:.2f} ms" for k, v in r.items()))
        for k, v in r.items(): tot[k] = tot.get(k, 0) + v * reps
print("16 blocks, batch 8:", ", ".join(f"{k} {v*1e3:.1f} ms" for k, v in tot.items()))
