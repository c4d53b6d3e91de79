"""Pretext tasks besides MotionBERT's lift (which lives in mocli.train), one module each.

See ``mocli.train.PRETEXTS`` for what a module offers.
"""
