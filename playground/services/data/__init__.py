"""Data out: every stored conversation as JSONL, CSV, DPO pairs or ShareGPT (export, dpo_pairs), and the Data tab's use case (service)."""
