"""Formal proofs of the EIE control and data-path units (SymbiYosys, ``yowasp-sby`` + yices).

========================== ==================================================================
module                     what
========================== ==================================================================
:mod:`eie.tb.formal.properties` harnesses: the claims, how each is checked, its broken designs
:mod:`eie.tb.formal.liveness` the whole array: every started layer finishes within a bound
:mod:`eie.tb.formal.mutate`   deliberately broken designs (one driver overridden)
:mod:`eie.tb.formal.sby`      running one sby job on an Amaranth design
``python -m eie.tb.formal``   run the proofs and their broken designs, print a table (``make formal``)
========================== ==================================================================
"""
