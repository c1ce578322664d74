import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";

const s = new Session();
s.connect();
s.post("Profiler.enable");
s.post("Profiler.setSamplingInterval", { interval: 200 });
s.post("Profiler.start");
process.on("exit", () => {
  s.post("Profiler.stop", (err, r) => {
    if (!err)
      writeFileSync(
        `${process.env.PROF_DIR ?? "/tmp/prof"}/p-${process.pid}.cpuprofile`,
        JSON.stringify(r.profile),
      );
  });
});
