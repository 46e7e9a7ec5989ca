# Reads `go test -json` on stdin; prints one line per package (ok/FAIL), the output of every failed
# test, and at the end "GOTEST <passed> <failed> <skipped>" for scripts/test to add up.
# A ginkgo suite runs as one Go test; its specs are counted instead, from the summary ginkgo
# prints ("N Passed | N Failed | N Pending | N Skipped").
require "json"

GINKGO_SUMMARY = /(\d+) Passed \| (\d+) Failed \| (\d+) Pending \| (\d+) Skipped/

output = Hash.new { |h, k| h[k] = +"" }
ginkgo = {}
passed = failed = skipped = 0
failed_tests = []
STDIN.each_line do |line|
  ev = begin
    JSON.parse(line)
  rescue JSON::ParserError
    print line # build errors arrive as plain text
    next
  end
  key = [ev["Package"], ev["Test"]]
  case ev["Action"]
  when "output"
    text = ev["Output"].to_s.gsub(/\e\[[0-9;]*m/, "")
    output[key] << text
    if ev["Test"] && (m = GINKGO_SUMMARY.match(text))
      ginkgo[key] = m.captures.map(&:to_i)
    end
  when "pass", "fail", "skip"
    if ev["Test"]
      if (specs = ginkgo[key])
        passed += specs[0]
        failed += specs[1]
        skipped += specs[2] + specs[3]
        failed += 1 if ev["Action"] == "fail" && specs[1].zero? # the suite failed outside its specs
      else
        case ev["Action"]
        when "pass" then passed += 1
        when "skip" then skipped += 1
        else failed += 1
        end
      end
      failed_tests << key if ev["Action"] == "fail"
      output.delete(key) unless ev["Action"] == "fail"
    else
      status = { "pass" => "ok  ", "fail" => "FAIL", "skip" => "skip" }[ev["Action"]]
      printf("%s %s %.1fs\n", status, ev["Package"], ev["Elapsed"].to_f)
      if ev["Action"] == "fail" && failed_tests.none? { |(pkg, _)| pkg == ev["Package"] }
        print output[key] # package-level failure: build error, panic, TestMain
        failed += 1
      end
    end
  end
end
failed_tests.each do |key|
  puts "--- FAIL: #{key[0]} #{key[1]}"
  print output[key].lines.last(200).join
end
puts "GOTEST #{passed} #{failed} #{skipped}"
