#!/usr/bin/env bash
# Regenerate the synthetic sample recordings and their ground truth.
#
#   bash samples/make_samples.sh
#
# Needs: espeak-ng, sox (apt-get install -y espeak-ng sox).  Output is
# byte-for-byte reproducible for a given espeak-ng / sox version (sox runs
# with -R, "repeatable" mode, so its noise generator uses a fixed seed, and
# with -D, no dither).  See samples/README.md for the versions used.
#
# Every turn is synthesised on its own, resampled, its leading/trailing
# silence trimmed, padded to a whole millisecond and scaled to a target RMS.
# Turns and pauses are then concatenated, so every timestamp in the ground
# truth is an exact sample position (a whole number of milliseconds) in the
# generated audio.  A very low brown-noise floor is mixed in so that pauses
# are not digital zero.
set -euo pipefail
export LC_ALL=C.UTF-8   # UTF-8 for the Russian text, '.' as decimal point in awk

cd "$(dirname "${BASH_SOURCE[0]}")"
OUT=$PWD

for tool in espeak-ng sox soxi awk; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "make_samples.sh: '$tool' not found (apt-get install -y espeak-ng sox)" >&2
        exit 1
    }
done

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

SOX=(sox -R -D -q)        # repeatable seeds, no dither, no progress display
NOISE_VOL=0.0015          # brown noise floor, RMS about 0.0008 (-62 dBFS)
NORMAL_RMS=0.07           # level of a normal talker
QUIET_RMS=0.007           # -20 dB: a talker far from the microphone
TRIM=(silence 1 0.01 0.1% reverse silence 1 0.01 0.1% reverse)

echo "espeak-ng: $(espeak-ng --version | sed -n 's/.*eSpeak NG text-to-speech: \([^ ]*\).*/\1/p')"
echo "sox:       $(sox --version | sed 's/.*SoX v//')"

# ---------------------------------------------------------------- helpers --

n_files=0
# render OUTVAR RATE VOICE PITCH SPEED TARGET_RMS TEXT [EXTRA SOX EFFECTS...]
# Synthesise TEXT, resample to RATE, apply extra effects, trim silence, pad
# to a whole millisecond and scale to TARGET_RMS.  Stores the file in OUTVAR.
render() {
    local -n _out=$1
    local rate=$2 voice=$3 pitch=$4 speed=$5 rms=$6 text=$7
    shift 7
    local unit=$((rate / 1000)) n pad cur gain
    n_files=$((n_files + 1))
    local _file="$TMP/turn_$n_files.wav"
    espeak-ng -v "$voice" -p "$pitch" -s "$speed" -w "$TMP/raw.wav" -- "$text"
    "${SOX[@]}" "$TMP/raw.wav" -b 16 -c 1 "$TMP/trim.wav" rate -v "$rate" "$@" "${TRIM[@]}"
    n=$(soxi -s "$TMP/trim.wav")
    pad=$(((unit - n % unit) % unit))
    cur=$("${SOX[@]}" "$TMP/trim.wav" -n stat 2>&1 | awk '/^RMS +amplitude/ {print $3}')
    gain=$(awk -v t="$rms" -v c="$cur" 'BEGIN {printf "%.6f", t / c}')
    "${SOX[@]}" "$TMP/trim.wav" "$_file" vol "$gain" pad 0 "${pad}s"
    _out=$_file
}

# silence FILE RATE SAMPLES [CHANNELS]
silence() {
    "${SOX[@]}" -r "$2" -c "${4:-1}" -n -b 16 "$1" trim 0 "$3s"
}

# fmt_ms MS -> seconds with 3 decimals
fmt_ms() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }

json_str() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    printf '"%s"' "$s"
}

# Timeline: a list of mono pieces per channel plus the turns placed on it.
# tl_reset RATE CHANNELS
tl_reset() {
    TL_RATE=$1 TL_CH=$2 TL_POS=0
    TL_PIECES_1=() TL_PIECES_2=()
    T_START=() T_END=() T_SPK=() T_TEXT=() T_CHAN=()
}
# tl_pause MS: silence on every channel
tl_pause() {
    local n=$(($1 * TL_RATE / 1000)) f="$TMP/gap_$TL_POS.wav"
    silence "$f" "$TL_RATE" "$n"
    TL_PIECES_1+=("$f")
    TL_PIECES_2+=("$f")
    TL_POS=$((TL_POS + n))
}
# tl_turn CHANNEL SPEAKER TEXT FILE: FILE on CHANNEL, silence on the other
tl_turn() {
    local ch=$1 spk=$2 text=$3 f=$4 n sil unit=$((TL_RATE / 1000))
    n=$(soxi -s "$f")
    sil="$TMP/sil_$TL_POS.wav"
    silence "$sil" "$TL_RATE" "$n"
    if [[ $ch == 1 ]]; then
        TL_PIECES_1+=("$f") TL_PIECES_2+=("$sil")
    else
        TL_PIECES_1+=("$sil") TL_PIECES_2+=("$f")
    fi
    T_START+=($((TL_POS / unit)))
    TL_POS=$((TL_POS + n))
    T_END+=($((TL_POS / unit)))
    T_SPK+=("$spk") T_TEXT+=("$text") T_CHAN+=("$ch")
}
# tl_write OUTFILE [OUTPUT FORMAT OPTIONS...]: concatenate, add noise floor
tl_write() {
    local dest=$1
    shift
    "${SOX[@]}" "${TL_PIECES_1[@]}" "$TMP/ch1.wav"
    if [[ $TL_CH == 2 ]]; then
        "${SOX[@]}" "${TL_PIECES_2[@]}" "$TMP/ch2.wav"
        "${SOX[@]}" -M "$TMP/ch1.wav" "$TMP/ch2.wav" "$TMP/speech.wav"
    else
        mv "$TMP/ch1.wav" "$TMP/speech.wav"
    fi
    "${SOX[@]}" -r "$TL_RATE" -c "$TL_CH" -n -b 16 "$TMP/noise.wav" \
        synth "${TL_POS}s" brownnoise vol "$NOISE_VOL"
    "${SOX[@]}" -m -v 1 "$TMP/speech.wav" -v 1 "$TMP/noise.wav" "$@" "$dest"
}
# tl_txt FILE: "START END SPEAKER<TAB>text"
tl_txt() {
    local i
    for i in "${!T_START[@]}"; do
        printf '%s %s %s\t%s\n' "$(fmt_ms "${T_START[i]}")" "$(fmt_ms "${T_END[i]}")" \
            "${T_SPK[i]}" "${T_TEXT[i]}"
    done >"$1"
}
# tl_rttm FILE URI [per-channel]
tl_rttm() {
    local i ch
    for i in "${!T_START[@]}"; do
        ch=1
        [[ ${3:-} == per-channel ]] && ch=${T_CHAN[i]}
        printf 'SPEAKER %s %s %s %s <NA> <NA> %s <NA> <NA>\n' "$2" "$ch" \
            "$(fmt_ms "${T_START[i]}")" "$(fmt_ms $((T_END[i] - T_START[i])))" "${T_SPK[i]}"
    done >"$1"
}

# ------------------------------------------------------------ speakers ------
# Display name -> id (file name), espeak voice, pitch (-p), speed (-s), level.
SPEAKERS=(Anna Boris Clara)
declare -A ID=([Anna]=anna [Boris]=boris [Clara]=clara)
declare -A VOICE=([Anna]=en-gb+f4 [Boris]=en-us+m3 [Clara]=en-gb-x-rp+f2)
declare -A PITCH=([Anna]=55 [Boris]=30 [Clara]=75)
declare -A SPEED=([Anna]=160 [Boris]=145 [Clara]=175)
# sox effects after synthesis: espeak-ng's variants share one synthesiser, and Anna's and Boris's came
# out close for speaker models (CAM++ cosine 0.8); Boris's voice is lowered 3 semitones, pitch and
# formants together (a larger vocal tract), which a listener hears as a deeper man's voice
declare -A EFFECTS=([Anna]="" [Boris]="pitch -300" [Clara]="")
declare -A LEVEL=([Anna]=$NORMAL_RMS [Boris]=$NORMAL_RMS [Clara]=$QUIET_RMS)
declare -A LEVEL_DB=([Anna]=0 [Boris]=0 [Clara]=-20)
declare -A ROLE=([Anna]="interviewer, radio host"
                 [Boris]="town council treasurer"
                 [Clara]="chair of the residents' association; quiet (far from the microphone)")

# ------------------------------------------------------- conversation.wav --
# pause before the turn (ms) | speaker | text
CONVERSATION=(
    "500|Anna|Good evening, I'm Anna. Tonight we discuss the town budget with Boris, our council treasurer, and Clara from the residents' association."
    "700|Boris|Thanks for having me, Anna."
    "900|Anna|Boris, spending rises four percent next year. Where does it go?"
    "600|Boris|Mostly roads and the library. Repairing the old bridge on Mill Street alone costs about two hundred thousand pounds."
    "1200|Clara|But nobody asked residents before cutting the library's weekend hours."
    "800|Boris|That's fair. We will hold a public meeting in March."
    "1000|Anna|Clara, will people accept a higher council tax?"
    "1500|Clara|Only if every line of the budget is published online."
    "400|Boris|Yes, exactly."
    "700|Anna|Then we'll check back in March. Thank you both."
)
TAIL_MS=600

tl_reset 16000 1
for entry in "${CONVERSATION[@]}"; do
    IFS='|' read -r pause spk text <<<"$entry"
    # shellcheck disable=SC2086  # EFFECTS holds several sox words
    render f 16000 "${VOICE[$spk]}" "${PITCH[$spk]}" "${SPEED[$spk]}" "${LEVEL[$spk]}" "$text" ${EFFECTS[$spk]}
    tl_pause "$pause"
    tl_turn 1 "$spk" "$text" "$f"
done
tl_pause "$TAIL_MS"
tl_write "$OUT/conversation.wav" -b 16
tl_txt "$OUT/conversation.txt"
tl_rttm "$OUT/conversation.rttm" conversation

{
    printf '{\n  "file": "conversation.wav",\n'
    printf '  "sample_rate": 16000,\n  "channels": 1,\n'
    printf '  "duration": %s,\n' "$(fmt_ms $((TL_POS / 16)))"
    printf '  "speakers": {\n'
    last=$((${#SPEAKERS[@]} - 1))
    for i in "${!SPEAKERS[@]}"; do
        s=${SPEAKERS[i]}
        printf '    %s: {"id": %s, "role": %s, "espeak_voice": %s, "pitch": %s, "speed": %s, "sox_effects": %s, "target_rms": %s, "relative_level_db": %s, "enrolment": %s}' \
            "$(json_str "$s")" "$(json_str "${ID[$s]}")" "$(json_str "${ROLE[$s]}")" \
            "$(json_str "${VOICE[$s]}")" "${PITCH[$s]}" "${SPEED[$s]}" "$(json_str "${EFFECTS[$s]}")" "${LEVEL[$s]}" "${LEVEL_DB[$s]}" \
            "$(json_str "voices/${ID[$s]}.wav")"
        [[ $i -lt $last ]] && printf ','
        printf '\n'
    done
    printf '  },\n  "turns": [\n'
    last=$((${#T_START[@]} - 1))
    for i in "${!T_START[@]}"; do
        printf '    {"start": %s, "end": %s, "speaker": %s, "text": %s}' \
            "$(fmt_ms "${T_START[i]}")" "$(fmt_ms "${T_END[i]}")" \
            "$(json_str "${T_SPK[i]}")" "$(json_str "${T_TEXT[i]}")"
        [[ $i -lt $last ]] && printf ','
        printf '\n'
    done
    printf '  ]\n}\n'
} >"$OUT/conversation.json"

# ---------------------------------------------------- voices/<speaker>.wav --
# Enrolment clips: other sentences, same voice settings, normal level.
declare -A ENROL=(
    [Anna]="The weather this morning was cold and bright, so I walked to the station.|On the train I read a long article about coastal birds.|Later I met a friend for lunch."
    [Boris]="My grandfather kept bees in a small garden behind the house.|Every autumn we sold the honey at the market.|I still remember the smell of wax and smoke."
    [Clara]="I usually start the day with a cup of strong tea and the crossword.|In the afternoon I teach piano to children from the neighbourhood.|On Sundays we go hiking in the hills."
)
mkdir -p "$OUT/voices"
for spk in "${SPEAKERS[@]}"; do
    tl_reset 16000 1
    tl_pause 300
    IFS='|' read -r -a sentences <<<"${ENROL[$spk]}"
    for text in "${sentences[@]}"; do
        # shellcheck disable=SC2086
        render f 16000 "${VOICE[$spk]}" "${PITCH[$spk]}" "${SPEED[$spk]}" "$NORMAL_RMS" "$text" ${EFFECTS[$spk]}
        tl_turn 1 "$spk" "$text" "$f"
        tl_pause 500
    done
    tl_write "$OUT/voices/${ID[$spk]}.wav" -b 16
done

# --------------------------------------------------------- phone_call.wav --
# Stereo, 8 kHz, mu-law; one talker per channel, telephone band (300-3400 Hz).
PHONE_VOICE=([1]=en-gb-scotland+m2 [2]=en-us+f5)
PHONE_PITCH=([1]=40 [2]=65)
PHONE_SPEED=([1]=160 [2]=165)
PHONE=(
    "400|1|Good morning, town council helpdesk. How can I help you?"
    "700|2|Hello. My bins were not collected on Tuesday."
    "600|1|Sorry about that. Can I have your street name, please?"
    "900|2|Yes, it's twelve Orchard Lane."
    "500|1|Thank you. The crew will come back tomorrow morning."
    "600|2|Great, thanks very much. Goodbye."
)
tl_reset 8000 2
for entry in "${PHONE[@]}"; do
    IFS='|' read -r pause ch text <<<"$entry"
    render f 8000 "${PHONE_VOICE[ch]}" "${PHONE_PITCH[ch]}" "${PHONE_SPEED[ch]}" "$NORMAL_RMS" \
        "$text" sinc 300-3400
    tl_pause "$pause"
    tl_turn "$ch" "CHANNEL_$ch" "$text" "$f"
done
tl_pause 500
tl_write "$OUT/phone_call.wav" -e mu-law -b 8
tl_txt "$OUT/phone_call.txt"
tl_rttm "$OUT/phone_call.rttm" phone_call per-channel

# ------------------------------------------------------------ russian.wav --
RUSSIAN=(
    "400|Сегодня в Минске облачно, около пяти градусов тепла."
    "600|Днём возможен небольшой дождь."
    "600|К вечеру ветер усилится, а в выходные обещают солнечную погоду."
)
tl_reset 16000 1
for entry in "${RUSSIAN[@]}"; do
    IFS='|' read -r pause text <<<"$entry"
    render f 16000 ru 50 150 "$NORMAL_RMS" "$text"
    tl_pause "$pause"
    tl_turn 1 Dmitri "$text" "$f"
done
tl_pause 500
tl_write "$OUT/russian.wav" -b 16
tl_txt "$OUT/russian.txt"

echo "wrote:"
for f in conversation.wav voices/*.wav phone_call.wav russian.wav; do
    printf '  %-20s %s s\n' "$f" "$(soxi -D "$OUT/$f")"
done
