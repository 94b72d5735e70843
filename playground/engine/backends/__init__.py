"""The backends behind the one seam (base): local (this process), ZeroGPU (forked GPU workers) and remote (OpenAI-compatible servers)."""
