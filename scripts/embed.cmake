# cmake -DIN=file -DOUT=file.c -DNAME=symbol -P embed.cmake
# Writes `const char NAME[]` holding IN's bytes plus a NUL.
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
file(WRITE ${OUT} "/* generated from ${IN}; do not edit */\nconst char ${NAME}[] = {${body}0x00};\n")
