"""vmxu: an open VT-x-style VMX unit (Amaranth RTL, Python reference model, cocotb verification)."""
