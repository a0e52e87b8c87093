#!/usr/bin/python3
"""Runs upstream impacket's examples/tstool.py on Debian's python3-impacket 0.10.

Debian 12 ships impacket 0.10, which has neither tstool.py nor the module it
needs (impacket.dcerpc.v5.tsts). Upstream's two files run on it with three
small adaptations made here at run time, without editing them:

  * impacket/dcerpc/v5/tsts.py is loaded under its package name from
    TSTOOL_UPSTREAM (a directory holding tstool.py and tsts.py from
    github:fortra/impacket, measured at f133bb8);
  * dtypes.SID (binary SID, newer than 0.10) is 0.10's ldaptypes.LDAP_SID,
    the same structure with the same formatCanonical();
  * examples.logger.init(ts, debug) takes 0.10's init(ts) and sets the level;
  * -port accepts any port (upstream allows 139 and 445 only; the bench's
    proxy listens elsewhere).

    TSTOOL_UPSTREAM=DIR /usr/bin/python3 bench/tstool_shim.py DOMAIN/user:pw@host -port N qwinsta
"""
import argparse
import importlib.util
import logging
import os
import runpy
import sys

upstream = os.environ.get("TSTOOL_UPSTREAM") or os.path.dirname(os.path.abspath(__file__))

import impacket.dcerpc.v5 as v5  # noqa: E402
import impacket.dcerpc.v5.dtypes as dtypes  # noqa: E402
from impacket.examples import logger  # noqa: E402

if not hasattr(dtypes, "SID"):
    from impacket.ldap.ldaptypes import LDAP_SID
    dtypes.SID = LDAP_SID

spec = importlib.util.spec_from_file_location("impacket.dcerpc.v5.tsts", os.path.join(upstream, "tsts.py"))
mod = importlib.util.module_from_spec(spec)
sys.modules["impacket.dcerpc.v5.tsts"] = mod
spec.loader.exec_module(mod)
v5.tsts = mod

_init = logger.init


def init(ts=False, debug=False):
    _init(ts)
    if debug:
        logging.getLogger().setLevel(logging.DEBUG)


logger.init = init

_add = argparse._ActionsContainer.add_argument


def add_argument(self, *names, **kw):
    if "-port" in names:
        kw.pop("choices", None)
    return _add(self, *names, **kw)


argparse._ActionsContainer.add_argument = add_argument

sys.argv = [os.path.join(upstream, "tstool.py")] + sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
