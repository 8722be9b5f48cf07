"""Waveforms of the VMX unit and the SoC: reading, decoding into VMX transactions, GTKWave files."""
