"""Board and timing constraints for the open FPGA flow: one TOML file per board (see README.md here).

Installed as package data of ``eie.constraints``; :mod:`eie.hw.boards` reads them.
"""
