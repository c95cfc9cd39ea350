"""Signals in, with their rate and channels: the signal contract a model's input carries
(contract.py: sampling rate, channel names, units, band-power settings, checked at inference),
recordings read whole or a block at a time (recordings.py: .npy or anything MNE reads, and
events CSVs), recordings cut into windows (windows.py) and band-power frames (bandpower.py).
numpy only; no torch.

May import: leaves.
"""
