#!/usr/bin/env bash
# Installs the official Fashion-MNIST files from Debian/Ubuntu's package `dataset-fashion-mnist`
# (into /usr/share/datasets/fashion-mnist). fmnist itself also downloads them when a network is
# there; this is the way on machines that reach only the package registries.
set -euo pipefail
if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then exit 0; fi
if ! command -v apt-get >/dev/null; then
  echo "Fashion-MNIST not found and apt-get is not available: run 'fmnist data download'" >&2
  echo "or put the four official .gz files in a folder and set FMNIST_DATA to it." >&2
  exit 1
fi
echo "Installing the Fashion-MNIST dataset with apt (package dataset-fashion-mnist)..."
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq dataset-fashion-mnist
