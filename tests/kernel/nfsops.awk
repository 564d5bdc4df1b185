# Summarise `tshark -O rpc,nfs` text: one line per RPC message (a TCP segment
# may hold several):
#   FRAME TIME cSTREAM XID call  mv=MINOR OP,OP,...
#   FRAME TIME cSTREAM XID reply STATUS   OP,OP:ERR,...   (failed ops carry their status)
# TIME (seconds since the capture began) and STREAM (tshark's tcp.stream: one
# number per TCP connection) come from the file named by -v map=FILE with
# lines "frame time stream"; without it they print as "-".
# NULL procedures show as the op "NULL"; callbacks (CB_COMPOUND) as their ops.
BEGIN {
    if (map != "")
        while ((getline line < map) > 0) {
            split(line, m, " ")
            ftime[m[1]] = sprintf("%.3f", m[2]); fstream[m[1]] = "c" m[3]
        }
}
function flush(    where) {
    if (typ == "") return
    where = frame " " (frame in ftime ? ftime[frame] " " fstream[frame] : "- -")
    if (typ == "call") printf "%s %s call mv=%s %s\n", where, xid, (mv == "" ? "-" : mv), (ops == "" ? proc : ops)
    else printf "%s %s reply %s %s%s\n", where, xid, (cst == "" ? "-" : cst), (ops == "" ? proc : ops), (trail != "" || (nres != "" && nres + 0 != nops) ? " MALFORMED(resarray count " nres ", " nops " ops decoded, " (trail == "" ? 0 : trail) " trailing bytes)" : "")
    typ = ""
}
function nm(s) { sub(/ \([0-9]+\).*$/, "", s); sub(/^NFS4ERR_/, "", s); return s }
/^Frame [0-9]+:/ { flush(); frame = $2; sub(/:$/, "", frame); next }
/^Remote Procedure Call, Type:/ {
    flush()
    typ = ($0 ~ /Type:Call/) ? "call" : "reply"
    xid = $0; sub(/.*XID:/, "", xid)
    ops = ""; mv = ""; cst = ""; proc = "?"; nres = ""; nops = 0; trail = ""
    next
}
typ == "" { next }
/^    Procedure: / || /^    \[Procedure: / {
    p = $0; sub(/.*Procedure: /, "", p); sub(/\]$/, "", p); proc = nm(p); next
}
/^    minorversion: / { mv = $2; next }
/^    Status: / { s = $0; sub(/^    Status: /, "", s); cst = nm(s); next }
/^    Operations \(count: [0-9]+\)/ { nres = $0; sub(/.*count: /, "", nres); sub(/\).*/, "", nres); next }
/^    Data \([0-9]+ bytes\)/ { if (typ == "reply") { b = $2; gsub(/[^0-9]/, "", b); trail = b }; next }
/^        Opcode: / { o = $0; sub(/^        Opcode: /, "", o); ops = ops (ops == "" ? "" : ",") nm(o); nops++; next }
/^            Status: / {
    s = $0; sub(/^            Status: /, "", s); s = nm(s)
    if (s != "NFS4_OK") ops = ops ":" s
    next
}
END { flush() }
