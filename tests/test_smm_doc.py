"""docs/smm.md is generated from rtl/arch/smm.py: the committed file is current."""

from pathlib import Path

from vmxu.rtl.arch.smm import markdown

DOC = Path(__file__).parent.parent / "docs" / "smm.md"


def test_smm_doc_is_generated_from_the_table():
    assert DOC.read_text() == markdown(), "run `python -m vmxu.rtl.arch.smm > docs/smm.md` and commit docs/smm.md"
