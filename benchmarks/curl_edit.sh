#!/bin/sh
# The baseline nanoedit is measured against: the same edit requests sent by a plain shell
# script, one INPUT after another. For each INPUT it POSTs the image as multipart/form-data
# to $BASE/v1/images/edits, picks the result URL out of the JSON answer with sed (no Python
# is started), then GETs that URL into $OUT/NAME-edit.$EXT. Any failure stops the script
# with a non-zero exit code (curl -f fails on an HTTP error status).
#
# Environment: BASE (http://host:port), KEY, MODEL, PROMPT, OUT (an existing folder),
# EXT (the result's extension), SIZE (optional: 1K, 2K or 4K).
# Usage: sh benchmarks/curl_edit.sh INPUT...     (run 8-wide: ... | xargs -P 8 -n 1 sh ...)
set -eu

for input in "$@"; do
    name=${input##*/}
    name=${name%.*}
    answer=$(curl -sS -f -H "Authorization: Bearer $KEY" \
        --form-string "model=$MODEL" \
        --form-string "prompt=$PROMPT" \
        --form-string n=1 \
        --form-string response_format=url \
        ${SIZE:+--form-string "image_size=$SIZE"} \
        -F "image=@$input" \
        "$BASE/v1/images/edits")
    url=$(printf '%s\n' "$answer" | sed -n 's/.*"url": *"\([^"]*\)".*/\1/p')
    if [ -z "$url" ]; then
        echo "curl_edit.sh: no result URL in the answer for $input: $answer" >&2
        exit 1
    fi
    curl -sS -f -o "$OUT/$name-edit.$EXT" "$url"
done
