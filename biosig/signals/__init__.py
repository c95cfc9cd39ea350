"""Signals in, with their rate and channels: the signal contract a model's input carries
(contract.py: sampling rate, channel names, units, band-power settings, checked at inference),
recordings read whole or a block at a time (recordings.py: .npy or anything MNE reads, and
events CSVs), recordings cut into windows (windows.py), band-power frames (bandpower.py: the
computation; frames.py: a windows file made into frames). numpy only; no torch. The commands'
flags and main() are in biosig/cli/.

May import: leaves.
"""
