package dev.psg4j.check;

import dev.psg4j.Fixtures;
import dev.psg4j.engine.Engines;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;
import dev.psg4j.report.CheckReport;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertTrue;

class SmokeTest {
    @Test
    void mlpFuncGradsPass() {
        try (Model model = Models.torchScript(Fixtures.file("mlp", "model.pt"));
             PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(Fixtures.inputs("mlp"))
                     .targets(Fixtures.targets("mlp")).loss(Loss.CROSS_ENTROPY).reduction(Reduction.SUM).build()) {
            CheckReport report = check.run(Engines.precomputed("func", Reduction.SUM,
                    Fixtures.grads("mlp", "grads_func_sum.pt")));
            System.out.println(report.summary() + report.table());
            System.out.println(report.toJson());
            assertTrue(report.passed());
        }
    }
}
