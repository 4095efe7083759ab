"""Rig-side tools for labs: spike counts per presentation from the acquisition system
(:mod:`rigkit.counts`) and readers of its streams (:mod:`rigkit.sources`: Lab Streaming Layer,
the Open Ephys GUI's Event Broadcaster, Intan RHX's TCP spike output). Depends on the
``xdream`` core only (errors); nothing in xdream, generators or responders imports it."""
