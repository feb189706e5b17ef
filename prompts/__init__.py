"""Prompt files (versioned names), shipped as the package data of ``rag.prompt_files``."""
