# Writes a PEFT-layout LoRA adapter (adapter_config.json + adapter_model.safetensors, F32)
# for a Hugging Face base, with the standard library only. Used once to make the fixture
# that real PEFT then loaded on the device (tests/data/peft/README.md).
import json, random, struct, sys, array, re
base, out, task = sys.argv[1], sys.argv[2], sys.argv[3]
hdr = open(base + "/model.safetensors", "rb").read(8)
n = struct.unpack("<Q", hdr)[0]
header = json.loads(open(base + "/model.safetensors", "rb").read(8 + n)[8:])
rnd = random.Random(20261204)
if task == "SEQ_2_SEQ_LM":
    targets = ["q", "v", "wo"]; rank_pattern = {"q": 2}; alpha_pattern = {"DenseReluDense\\.wo": 3}
    pick = lambda m: m.endswith((".q", ".v", ".wo"))
    r_of = lambda m: 2 if m.endswith(".q") else 4
else:
    targets = ["q_proj", "v_proj", "down_proj"]; rank_pattern = {"q_proj": 2}; alpha_pattern = {"down_proj": 3}
    pick = lambda m: m.endswith((".q_proj", ".v_proj", ".down_proj"))
    r_of = lambda m: 2 if m.endswith(".q_proj") else 4
tensors = {}
for name, info in header.items():
    if name == "__metadata__" or not name.endswith(".weight"): continue
    m = name[:-len(".weight")]
    if not pick(m): continue
    d_out, d_in = info["shape"]
    r = r_of(m)
    tensors["base_model.model." + m + ".lora_A.weight"] = ([r, d_in], [rnd.gauss(0, 0.3) for _ in range(r * d_in)])
    tensors["base_model.model." + m + ".lora_B.weight"] = ([d_out, r], [rnd.gauss(0, 0.3) for _ in range(d_out * r)])
head, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
for k in sorted(tensors):
    shape, vals = tensors[k]
    b = array.array("f", vals).tobytes()
    head[k] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(b)]}
    blobs.append(b); off += len(b)
hj = json.dumps(head, separators=(",", ":")).encode()
hj += b" " * ((8 - len(hj) % 8) % 8)
import os
os.makedirs(out, exist_ok=True)
with open(out + "/adapter_model.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(hj))); f.write(hj); [f.write(b) for b in blobs]
config = {"peft_type": "LORA", "task_type": task, "base_model_name_or_path": base.rstrip("/").split("/")[-1],
          "r": 4, "lora_alpha": 8, "use_rslora": True, "target_modules": targets, "rank_pattern": rank_pattern,
          "alpha_pattern": alpha_pattern, "lora_dropout": 0.0, "bias": "none", "fan_in_fan_out": False,
          "modules_to_save": None, "use_dora": False, "inference_mode": True}
json.dump(config, open(out + "/adapter_config.json", "w"), indent=2)
print(out, len(tensors), "tensors")
