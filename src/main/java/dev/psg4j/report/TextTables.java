package dev.psg4j.report;

import com.github.freva.asciitable.AsciiTable;
import com.github.freva.asciitable.Column;
import com.github.freva.asciitable.ColumnData;
import com.github.freva.asciitable.HorizontalAlign;
import com.github.freva.asciitable.OverflowBehaviour;

import java.util.Collection;
import java.util.List;
import java.util.function.Function;

/** Plain-text tables of psg4j's reports (check, conformance, bench): left-aligned columns, no borders. */
public final class TextTables {
    /** Cells wider than this wrap onto the next line. */
    public static final int MAX_CELL_WIDTH = 60;

    private TextTables() {
    }

    /** A column headed {@code header} whose cells are {@code cell} of each row. */
    public static <T> ColumnData<T> column(String header, Function<T, String> cell) {
        return new Column().header(header).headerAlign(HorizontalAlign.LEFT).dataAlign(HorizontalAlign.LEFT)
                .maxWidth(MAX_CELL_WIDTH, OverflowBehaviour.NEWLINE).with(cell);
    }

    /** The rows as a table with a header line, ending with a newline. */
    public static <T> String render(Collection<T> rows, List<ColumnData<T>> columns) {
        // Without borders each cell keeps one space of padding either side: the last column's is dropped.
        StringBuilder out = new StringBuilder();
        AsciiTable.getTable(AsciiTable.NO_BORDERS, rows, columns).lines()
                .forEach(line -> out.append(line.stripTrailing()).append('\n'));
        return out.toString();
    }
}
