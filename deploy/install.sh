#!/bin/sh
# EdgeFleet edge installer (the full installer follows in the next commit).
CLOUD_URL='@@EDGEFLEET_CLOUD_URL@@'
DEFAULT_VERSION='@@EDGEFLEET_DEFAULT_VERSION@@'
RELEASE_KEY='@@EDGEFLEET_RELEASE_KEY@@'
echo "edgefleet installer: not complete yet" >&2
exit 1
