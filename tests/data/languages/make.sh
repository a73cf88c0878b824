#!/usr/bin/env bash
# Synthetic Ukrainian, Belarusian and Russian speech (espeak-ng), for the language-identification
# tests (tests/test_languages.py). No real Ukrainian or Belarusian recording with a reference was
# available; these are not for WER. Deterministic with the same espeak-ng and sox versions
# (made with espeak-ng 1.51, SoX 14.4.2). Run from anywhere: bash tests/data/languages/make.sh
set -euo pipefail
cd "$(dirname "$0")"
say() {  # say VOICE OUT TEXT
    espeak-ng -v "$1" -s 150 -w "$2.tmp.wav" "$3"
    sox -R -D "$2.tmp.wav" -r 16000 -c 1 -b 16 "$2" gain -n -3
    rm -f "$2.tmp.wav"
}
say uk uk.flac "Добрий день. Сьогодні у Києві хмарно, можливий невеликий дощ. Увечері вітер посилиться, а на вихідних обіцяють сонячну погоду."
say be be.flac "Добры дзень. Сёння ў Мінску воблачна, магчымы невялікі дождж. Увечары вецер узмоцніцца, а на выхадныя абяцаюць сонечнае надвор'е."
say ru ru.flac "Добрый день. Сегодня в Москве облачно, возможен небольшой дождь. Вечером ветер усилится, а в выходные обещают солнечную погоду."
