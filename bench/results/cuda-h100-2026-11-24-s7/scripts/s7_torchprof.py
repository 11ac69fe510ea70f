# Which kernels cuDNN (through PyTorch) runs for a layer's gradients, with their times and grids.
import json, sys, torch
from torch.profiler import profile, ProfilerActivity
suite = json.load(open(sys.argv[1]))["layers"]
names = sys.argv[2].split(","); dtypes = sys.argv[3].split(",")
torch.backends.cudnn.benchmark = True
D = {"fp32": (torch.float32, False), "tf32": (torch.float32, True), "bf16": (torch.bfloat16, False), "fp16": (torch.float16, False)}
for L in suite:
    if L["name"] not in names: continue
    for dn in dtypes:
        dt, tf = D[dn]; torch.backends.cudnn.allow_tf32 = tf
        for layout in ("nchw", "nhwc"):
            mf = torch.channels_last if layout == "nhwc" else torch.contiguous_format
            mk = lambda *s: torch.randn(*s, device="cuda", dtype=dt).to(memory_format=mf)
            n = L["n"]
            x = mk(n, L["cin"], L["h"], L["w"]); w = mk(L["cin"], L["cout"] // L["groups"], L["kh"], L["kw"])
            dy = mk(n, L["cout"], L["out_h"], L["out_w"])
            args = (dy, x, w, [L["cout"]], L["stride"], L["pad"], L["dil"], True, L["out_pad"], L["groups"])
            for tag, mask in [("dx", [True, False, False]), ("dwdb", [False, True, True])]:
                for _ in range(5): torch.ops.aten.convolution_backward(*args, mask)
                torch.cuda.synchronize()
                with profile(activities=[ProfilerActivity.CUDA]) as prof:
                    for _ in range(3): torch.ops.aten.convolution_backward(*args, mask)
                    torch.cuda.synchronize()
                print(f"== {L['name']} {dn} {layout} {tag}")
                for e in prof.events():
                    if e.device_type == torch.autograd.DeviceType.CUDA:
                        print(f"   {e.device_time/1000:.4f} ms  {e.name[:160]}")
