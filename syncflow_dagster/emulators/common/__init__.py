"""Pieces both emulators share: problem documents, auth, fault injection, serving."""
