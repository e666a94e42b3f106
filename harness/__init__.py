"""cnllm-harness: benchmark open-weight Chinese LLMs on the hardware you own.

The package root stays import-light: `harness --help` must answer without importing torch.
"""

__version__ = "0.1.0"
SCHEMA_VERSION = "1.3"
