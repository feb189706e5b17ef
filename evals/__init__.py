"""The eval suite behind `rag eval`: retrieval (and, as they land, answers, checker, decisions)."""
