"""Runs real Hugging Face PEFT on the fixtures of tests/data/peft (see README.md there).

For the T5 and Llama golden bases it
  1. loads `<arch>-written` (PEFT's layout, written by write_peft_adapter.py) with
     PeftModel.from_pretrained and records the logits PEFT computes with it;
  2. loads `<arch>-exported` (what `gaggle export-peft` wrote after `gaggle import-peft`
     of `<arch>-written`) the same way and records those logits;
  3. checks both against the merged weights W + scale * B A, computed in float64;
  4. makes an adapter with PEFT itself (get_peft_model, random A and B, rsLoRA, rank and
     alpha patterns), saves it to $OUT/<arch>-peft-made and records its logits.
Usage: OUT=dir python3 make_peft_fixtures.py   (from the repository root)
"""
import json, math, os, sys

import torch
import transformers
import peft
from peft import LoraConfig, PeftModel, get_peft_model

OUT = os.environ.get("OUT", "out")
ROOT = "tests/data"
torch.manual_seed(0)
report = {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}


def load_base(arch):
    if arch == "t5":
        return transformers.T5ForConditionalGeneration.from_pretrained(f"{ROOT}/golden/t5-v1_1-tiny").eval()
    return transformers.LlamaForCausalLM.from_pretrained(f"{ROOT}/golden/llama-tiny").eval()


def case_of(arch):
    name = "t5-v1_1-tiny" if arch == "t5" else "llama-tiny"
    return json.load(open(f"{ROOT}/golden/{name}/case.json"))


def logits_of(model, arch, case):
    with torch.no_grad():
        ids = torch.tensor(case["input_ids"])
        mask = torch.tensor(case["attention_mask"])
        if arch == "t5":
            out = model(input_ids=ids, attention_mask=mask, decoder_input_ids=torch.tensor(case["decoder_input_ids"]))
        else:
            out = model(input_ids=ids, attention_mask=mask, position_ids=torch.tensor(case["position_ids"]))
        return out.logits.float()


def merged_logits(arch, case, adapter_dir):
    """W + scale * B A in float64, scale = alpha_m / sqrt(r_m) or alpha_m / r_m (PEFT's rule)."""
    from safetensors.torch import load_file
    cfg = json.load(open(f"{adapter_dir}/adapter_config.json"))
    sd = load_file(f"{adapter_dir}/adapter_model.safetensors")
    model = load_base(arch).double()
    mods = dict(model.named_modules())
    import re
    for key, a in sd.items():
        if not key.endswith(".lora_A.weight"):
            continue
        m = key[len("base_model.model."):-len(".lora_A.weight")]
        b = sd[key.replace("lora_A", "lora_B")]
        alpha = cfg["lora_alpha"]
        for pat, val in cfg.get("alpha_pattern", {}).items():
            if re.match(rf"(.*\.)?({pat})$", m):
                alpha = val
                break
        r = a.shape[0]
        scale = alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r
        with torch.no_grad():
            mods[m].weight += scale * (b.double() @ a.double())
    return _logits64(model, arch, case)


def _logits64(model, arch, case):
    with torch.no_grad():
        ids = torch.tensor(case["input_ids"])
        mask = torch.tensor(case["attention_mask"])
        if arch == "t5":
            out = model(input_ids=ids, attention_mask=mask, decoder_input_ids=torch.tensor(case["decoder_input_ids"]))
        else:
            out = model(input_ids=ids, attention_mask=mask, position_ids=torch.tensor(case["position_ids"]))
        return out.logits


def valid(arch, case, t):
    if arch == "t5":
        return t
    mask = torch.tensor(case["attention_mask"]).bool()
    return t[mask]


os.makedirs(OUT, exist_ok=True)
for arch in ["t5", "llama"]:
    case = case_of(arch)
    written = f"{ROOT}/peft/{arch}-written"
    exported = f"{ROOT}/peft/{arch}-exported"
    lw = logits_of(PeftModel.from_pretrained(load_base(arch), written).eval(), arch, case)
    le = logits_of(PeftModel.from_pretrained(load_base(arch), exported).eval(), arch, case)
    l64 = merged_logits(arch, case, written)
    base = logits_of(load_base(arch), arch, case)
    r = report[arch] = {}
    r["written_vs_exported_max_abs"] = (valid(arch, case, lw) - valid(arch, case, le)).abs().max().item()
    r["written_vs_merged_float64_max_abs"] = (valid(arch, case, lw).double() - valid(arch, case, l64)).abs().max().item()
    r["adapter_vs_base_max_abs"] = (valid(arch, case, lw) - valid(arch, case, base)).abs().max().item()

    # An adapter PEFT makes itself.
    torch.manual_seed(1)
    if arch == "t5":
        cfg = LoraConfig(task_type="SEQ_2_SEQ_LM", r=4, lora_alpha=8, use_rslora=True, target_modules=["q", "k", "wi_0", "o"],
                         rank_pattern={"k": 2}, alpha_pattern={"wi_0": 5}, init_lora_weights=False)
    else:
        cfg = LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8, target_modules="all-linear",
                         rank_pattern={"k_proj": 2}, alpha_pattern={"up_proj": 5}, init_lora_weights=False)
    made = get_peft_model(load_base(arch), cfg).eval()
    made_dir = f"{OUT}/{arch}-peft-made"
    made.save_pretrained(made_dir)
    lm = logits_of(made, arch, case)
    json.dump({"logits_written": lw.tolist(), "logits_exported": le.tolist(), "logits_peft_made": lm.tolist(),
               "valid_positions_only": arch != "t5"}, open(f"{OUT}/{arch}-logits.json", "w"))
    r["peft_made_files"] = sorted(os.listdir(made_dir))

json.dump(report, open(f"{OUT}/report.json", "w"), indent=2)
print(json.dumps(report, indent=2))
