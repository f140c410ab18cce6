. /work/main/tests/integration/lib.sh
fetch_mtas; start_sink
setsid() { shift 0; command strace -f -tt -o $TEST_TMP/st.trace setsid "$@"; }
start_postfix "" 
grep -v 'mmap\|mprotect\|fstat\|close(\|rt_sig\|openat\|read(\|brk' $TEST_TMP/st.trace | awk '{print $1, $2, substr($0, index($0,$3), 120)}' | sed -n '/getrandom/,$p' | awk 'BEGIN{p=0} {split($2,a,":"); t=a[3]; if (p && t-p>0.05) print "GAP", t-p; p=t; print}' | grep -B3 -A1 GAP | head -60
done_testing
